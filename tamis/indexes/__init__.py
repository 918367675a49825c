"""tamis.indexes: the on-disk index formats (BM25, dense); build, save, load, verify. No Beam here."""


def shard_name(i: int, j: int = 0) -> str:
    """The name of index shard j of input i, shared by the formats so one reader stage serves every build."""
    return f"{i:05d}-{j:05d}"
