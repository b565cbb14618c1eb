"""Model flavors: one save/load/predict adapter per ML library (see ``base.py``)."""
