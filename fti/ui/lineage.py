"""Lineage graphs for the UI: feature groups -> feature view -> training datasets -> model
versions -> deployments around any of those objects, built from the public API and laid out in
one column per stage (a layered DAG needs no graph library).

Around a feature group: the views reading it and everything downstream of them. Around a view:
its groups, datasets, models (the newest few) and deployments. Around a model version or a
deployment: that version's own chain. Large fan-outs end in a "more" node linking to the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fti.errors import FtiError

if TYPE_CHECKING:
    from fti.project import Project
    from fti.registry.model_version import ModelVersion

COLUMNS = (
    ("feature_group", "feature groups"),
    ("feature_view", "feature view"),
    ("training_dataset", "training datasets"),
    ("model_version", "model versions"),
    ("deployment", "deployments"),
)
NODE_W, NODE_H, COL_GAP, ROW_GAP, TOP = 196, 44, 64, 14, 36


@dataclass
class Node:
    key: str
    kind: str
    label: str
    detail: str
    href: str
    """Path inside the UI (without its mount prefix)."""
    focus: bool = False
    x: int = 0
    y: int = 0


@dataclass
class Graph:
    """Nodes by key and edges ``(from key, to key)``; :meth:`layout` places the nodes."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    width: int = 0
    height: int = 0

    def add(self, node: Node) -> str:
        kept = self.nodes.setdefault(node.key, node)
        kept.focus = kept.focus or node.focus
        return node.key

    def link(self, source: str, target: str) -> None:
        self.edges.add((source, target))

    def layout(self) -> Graph:
        """Place nodes in their stage's column, ordered by their parents' positions."""
        parents: dict[str, list[str]] = {}
        for source, target in self.edges:
            parents.setdefault(target, []).append(source)
        tallest = 0
        for index, (kind, _) in enumerate(COLUMNS):
            column = [n for n in self.nodes.values() if n.kind == kind]

            def rank(node: Node) -> tuple[float, str]:
                ys = [self.nodes[p].y for p in parents.get(node.key, []) if p in self.nodes]
                return (sum(ys) / len(ys) if ys else 0.0, node.key)

            for row, node in enumerate(sorted(column, key=rank)):
                node.x = index * (NODE_W + COL_GAP)
                node.y = TOP + row * (NODE_H + ROW_GAP)
            tallest = max(tallest, len(column))
        self.width = len(COLUMNS) * (NODE_W + COL_GAP) - COL_GAP
        self.height = TOP + max(tallest, 1) * (NODE_H + ROW_GAP)
        return self

    def paths(self) -> list[tuple[str, bool]]:
        """SVG path data of every edge (a horizontal S-curve), and whether it touches the focus."""
        out = []
        for source, target in sorted(self.edges):
            a, b = self.nodes[source], self.nodes[target]
            x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
            x2, y2 = b.x, b.y + NODE_H // 2
            mid = (x1 + x2) // 2
            out.append((f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}", a.focus or b.focus))
        return out


def _group(name: str, version: int, focus: bool = False) -> Node:
    return Node(
        f"fg:{name}:{version}",
        "feature_group",
        name,
        f"v{version}",
        f"/feature-groups/{name}/{version}",
        focus,
    )


def _view(name: str, version: int, focus: bool = False) -> Node:
    return Node(
        f"fv:{name}:{version}", "feature_view", name, f"v{version}", f"/feature-views/{name}/{version}", focus
    )


def _model(mv: ModelVersion, focus: bool = False) -> Node:
    metric = next(iter(mv.metrics.items()), None)
    detail = f"v{mv.version}" + (f" · {metric[0]} {metric[1]:.3g}" if metric else "")
    return Node(
        f"mv:{mv.name}:{mv.version}",
        "model_version",
        mv.name,
        detail,
        f"/models/{mv.name}/{mv.version}",
        focus,
    )


def _add_view(
    project: Project,
    graph: Graph,
    name: str,
    version: int,
    *,
    models: int,
    only: ModelVersion | None = None,
    focus: bool = False,
) -> None:
    fv = project.feature_store.get_feature_view(name, version)
    view = graph.add(_view(name, version, focus))
    for part in fv.query.parts:
        graph.link(graph.add(_group(part.group.name, part.group.version)), view)
    datasets = fv.training_dataset_versions() if only is None else [only.training_dataset_version]
    for td in datasets:
        if td is not None:
            key = graph.add(
                Node(
                    f"td:{name}:{version}:{td}",
                    "training_dataset",
                    f"dataset v{td}",
                    f"of {name} v{version}",
                    f"/feature-views/{name}/{version}#td-{td}",
                )
            )
            graph.link(view, key)
    if only is not None:
        found: list[ModelVersion] = [only]
        more = 0
    else:
        page = project.model_registry.search_model_versions(
            feature_view=(name, version), order_by="created_at desc", limit=models
        )
        found, more = page.items, page.total - len(page.items)
    for mv in found:
        node = graph.add(_model(mv))
        td = mv.training_dataset_version
        graph.link(
            f"td:{name}:{version}:{td}"
            if td is not None and f"td:{name}:{version}:{td}" in graph.nodes
            else view,
            node,
        )
    if more > 0:
        graph.link(
            view,
            graph.add(
                Node(
                    f"more:{name}:{version}",
                    "model_version",
                    f"+{more} more",
                    "model versions",
                    f"/feature-views/{name}/{version}",
                )
            ),
        )


def _add_deployments(project: Project, graph: Graph, focus: str | None = None) -> None:
    for deployment in project.serving.list():
        try:
            mv = deployment.model_version()
        except FtiError:  # its model or alias is gone: nothing to draw an edge from
            continue
        source = f"mv:{mv.name}:{mv.version}"
        if source in graph.nodes:
            key = graph.add(
                Node(
                    f"dep:{deployment.name}",
                    "deployment",
                    deployment.name,
                    deployment.status,
                    f"/deployments/{deployment.name}",
                    deployment.name == focus,
                )
            )
            graph.link(source, key)


def lineage(project: Project, kind: str, name: str, version: int | None) -> Graph:
    """The lineage graph around one object (``kind``: ``fg``, ``fv``, ``model``, ``deployment``)."""
    graph = Graph()
    focus_deployment = None
    if kind == "fg":
        assert version is not None
        fg = project.feature_store.get_feature_group(name, version)
        graph.add(_group(fg.name, fg.version, focus=True))
        for view in project.feature_store.search_feature_views(feature_group=(fg.name, fg.version), limit=20):
            _add_view(project, graph, view.name, view.version, models=5)
    elif kind == "fv":
        assert version is not None
        _add_view(project, graph, name, version, models=10, focus=True)
    else:
        if kind == "deployment":
            focus_deployment = name
            mv = project.serving.get(name).model_version()
        else:
            mv = project.model_registry.get_model(name, version=version)
        if mv.feature_view_name is not None and mv.feature_view_version is not None:
            _add_view(project, graph, mv.feature_view_name, mv.feature_view_version, models=0, only=mv)
        graph.add(_model(mv, focus=kind == "model"))
    _add_deployments(project, graph, focus_deployment)
    return graph.layout()
