"""tamis.eval."""
