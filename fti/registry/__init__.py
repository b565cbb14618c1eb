"""The model registry: model versions in safe formats, signatures, lineage, aliases, evaluation
on data, promotion.

Get it as ``project.model_registry`` (:class:`fti.registry.model_registry.ModelRegistry`).
Flavors (save/load/predict adapters per ML library) live in ``fti.registry.flavors``; evaluations
(metrics per slice, fairness, a baseline on the same rows) in ``fti.registry.evaluation``.
"""
