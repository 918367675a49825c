"""tamis.report."""
