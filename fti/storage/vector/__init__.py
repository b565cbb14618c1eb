"""The vector index role: embeddings per key for similarity search (feature groups' embedding indexes)."""
