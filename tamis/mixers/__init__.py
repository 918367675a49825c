"""tamis.mixers."""
