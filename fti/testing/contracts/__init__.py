"""Contract test suites that every backend of a storage role must pass."""
