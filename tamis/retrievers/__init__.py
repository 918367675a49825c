"""tamis.retrievers."""

from tamis.retrievers.client import Client

__all__ = ["Client"]
