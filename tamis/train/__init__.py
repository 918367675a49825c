"""tamis.train."""
