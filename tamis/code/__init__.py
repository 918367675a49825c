"""Repository-level code: ingestion, structure, cross-file context for a cursor, FIM samples."""
