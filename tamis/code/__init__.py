"""tamis.code: repository-level code context (ingestion, structure, import graph, code index, context retriever)
and fill-in-the-middle training samples. Pure: no Beam; pipelines/ and cli/ wrap it."""
