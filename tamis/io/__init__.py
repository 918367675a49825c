"""tamis.io."""
