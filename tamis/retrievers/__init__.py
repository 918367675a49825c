"""tamis.retrievers."""
