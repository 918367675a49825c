"""tamis.filters."""
