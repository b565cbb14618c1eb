"""The model registry: model versions in safe formats, signatures, lineage, aliases, promotion.

Get it as ``project.model_registry`` (:class:`fti.registry.model_registry.ModelRegistry`).
Flavors (save/load/predict adapters per ML library) live in ``fti.registry.flavors``.
"""
