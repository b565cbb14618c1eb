"""The feature store: feature groups, feature views, ingestion, validation, statistics,
point-in-time retrieval, transformations and online feature vectors."""
