"""tamis.serve."""
