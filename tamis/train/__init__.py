"""tamis.train: what a GPU training job imports to read tamis exports. It needs torch, never apache_beam.

    TokenDataset     packed fixed-length sequences from a token export (`tamis export tokens`)
    DocumentDataset  rows of Parquet shards (a curate run, a mix)
    DataLoader       torch's DataLoader with state_dict()/load_state_dict() for exact resume

Both datasets shuffle with a seed and a bounded buffer, split work over ranks and
DataLoader workers without overlap or loss, and resume at exactly the next sample;
see tamis/train/order.py for the order and docs/export.md for usage.
"""

from tamis.train.documents import DocumentDataset
from tamis.train.loader import DataLoader
from tamis.train.tokens import TokenDataset

__all__ = ["DataLoader", "DocumentDataset", "TokenDataset"]
