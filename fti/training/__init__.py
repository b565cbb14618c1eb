"""Training: runs (params, metric series, code and environment capture)."""
