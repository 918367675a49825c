"""tamis.indexes."""
