"""scikit-learn's HistGradientBoosting models as an ONNX tree ensemble.

skl2onnx cannot convert them with current ``onnx`` releases (it emits boolean node attributes that
``onnx.helper`` rejects), so this module writes the ``TreeEnsembleRegressor`` itself: every tree
of every iteration, thresholds and leaf values as double tensors, missing values following
``missing_go_to_left``. The graph outputs the raw score; :func:`outputs` applies the model's own
link (sigmoid/softmax) and decision rule in numpy, exactly as ``predict``/``predict_proba`` do.
Categorical splits are not supported (``ValueError``: the caller falls back to native).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ONNX_IR_VERSION = 8  # the newest that every supported onnxruntime release loads


def to_onnx(model: Any, n_features: int, dtype: Any) -> bytes:
    """The serialized ONNX model computing the raw score ``[n, n_trees_per_iteration]``."""
    from onnx import TensorProto, helper, numpy_helper

    int_fields = (
        "nodes_treeids",
        "nodes_nodeids",
        "nodes_featureids",
        "nodes_truenodeids",
        "nodes_falsenodeids",
        "nodes_missing_value_tracks_true",
        "target_ids",
        "target_nodeids",
        "target_treeids",
    )
    attrs: dict[str, Any] = {name: [] for name in int_fields}
    modes: list[str] = []
    thresholds: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    tree = 0
    for iteration in model._predictors:
        for target, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits cannot be expressed as ONNX BRANCH_LEQ nodes")
            leaf = nodes["is_leaf"].astype(bool)
            ids = np.arange(len(nodes))
            attrs["nodes_treeids"] += [tree] * len(nodes)
            attrs["nodes_nodeids"] += ids.tolist()
            attrs["nodes_featureids"] += np.where(leaf, 0, nodes["feature_idx"]).astype(int).tolist()
            attrs["nodes_truenodeids"] += np.where(leaf, 0, nodes["left"]).astype(int).tolist()
            attrs["nodes_falsenodeids"] += np.where(leaf, 0, nodes["right"]).astype(int).tolist()
            attrs["nodes_missing_value_tracks_true"] += (
                np.where(leaf, 0, nodes["missing_go_to_left"]).astype(int).tolist()
            )
            modes += ["LEAF" if is_leaf else "BRANCH_LEQ" for is_leaf in leaf]
            thresholds.append(np.where(leaf, 0.0, nodes["num_threshold"]))
            attrs["target_ids"] += [target] * int(leaf.sum())
            attrs["target_nodeids"] += ids[leaf].tolist()
            attrs["target_treeids"] += [tree] * int(leaf.sum())
            weights.append(nodes["value"][leaf])
            tree += 1
    k = int(model.n_trees_per_iteration_)
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["X"],
        ["raw"],
        domain="ai.onnx.ml",
        n_targets=k,
        aggregate_function="SUM",
        post_transform="NONE",
        nodes_modes=modes,
        nodes_values_as_tensor=numpy_helper.from_array(np.concatenate(thresholds).astype(dtype)),
        target_weights_as_tensor=numpy_helper.from_array(np.concatenate(weights).astype(dtype)),
        base_values_as_tensor=numpy_helper.from_array(
            np.asarray(model._baseline_prediction, dtype=dtype).ravel()
        ),
        **attrs,
    )
    input_type = TensorProto.DOUBLE if np.dtype(dtype) == np.float64 else TensorProto.FLOAT
    graph = helper.make_graph(
        [node],
        "hist_gradient_boosting",
        [helper.make_tensor_value_info("X", input_type, [None, n_features])],
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, [None, k])],  # the op outputs float
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        ir_version=ONNX_IR_VERSION,
    )
    return bytes(onnx_model.SerializeToString())


def outputs(model: Any, raw: np.ndarray) -> dict[str, np.ndarray]:
    """``predict`` (and ``predict_proba`` for classifiers) from the raw score, as scikit-learn does."""
    raw = np.asarray(raw, dtype=np.float64)
    classes = getattr(model, "classes_", None)
    if classes is None:
        return {"predict": model._loss.link.inverse(raw.ravel())}
    proba = model._loss.predict_proba(raw)
    # scikit-learn's rule for two classes is "> 0", not ">= 0" (argmax of [0.5, 0.5] is 0)
    encoded = (raw.ravel() > 0).astype(int) if raw.shape[1] == 1 else np.argmax(raw, axis=1)
    return {"predict": classes[encoded], "predict_proba": proba}


_LINKS = {"IdentityLink": "identity", "LogLink": "log", "LogitLink": "logit", "MultinomialLogit": "softmax"}


def post_spec(model: Any) -> dict[str, Any] | None:
    """What :func:`outputs` needs, as JSON-able data (``None`` for a link this module cannot
    reproduce): lets a cached conversion run without loading scikit-learn."""
    link = _LINKS.get(type(getattr(getattr(model, "_loss", None), "link", None)).__name__)
    if link is None:
        return None
    classes = getattr(model, "classes_", None)
    if classes is None:
        return {"link": link, "classes": None, "classes_dtype": None}
    classes = np.asarray(classes)
    if classes.dtype == object:
        return None
    return {"link": link, "classes": classes.tolist(), "classes_dtype": classes.dtype.str}


def outputs_from_spec(spec: dict[str, Any], raw: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`outputs` computed from a :func:`post_spec` instead of the model (numpy only)."""
    raw = np.asarray(raw, dtype=np.float64)
    link = spec["link"]
    if spec["classes"] is None:
        values = raw.ravel()
        if link == "log":
            values = np.exp(values)
        elif link != "identity":
            raise ValueError(f"link {link!r} is not a regression link")
        return {"predict": values}
    classes = np.asarray(spec["classes"], dtype=np.dtype(spec["classes_dtype"]))
    if raw.shape[1] == 1:
        if link != "logit":
            raise ValueError(f"link {link!r} is not a binary classification link")
        positive = 1.0 / (1.0 + np.exp(-raw[:, 0]))
        proba = np.column_stack([1.0 - positive, positive])
        return {"predict": classes[(raw[:, 0] > 0).astype(int)], "predict_proba": proba}
    if link != "softmax":
        raise ValueError(f"link {link!r} is not a multiclass link")
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    proba = shifted / shifted.sum(axis=1, keepdims=True)
    return {"predict": classes[np.argmax(raw, axis=1)], "predict_proba": proba}
