"""Similar items: item embeddings from a TruncatedSVD and similarity search in the feature store."""
