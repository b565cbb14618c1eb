"""Storage roles: metadata catalog, offline store, online store, artifact store.

Each role has a Protocol in ``<role>/base.py`` and implementations in ``<role>/<tech>.py``,
chosen by URL scheme and imported lazily (see ``fti.plugins``).
"""
