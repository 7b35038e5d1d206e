"""The Graph View: a layered left-to-right layout of a lineage graph, computed in Python.

Layers come from ``LineageGraph.layers()`` (longest path from a source); the order inside
each layer is improved by a few barycenter sweeps so arrows cross less; the template
draws the result as inline SVG. No JavaScript, no graph library.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..lineage import LineageGraph, Node

NODE_H = 34
V_GAP = 16
H_GAP = 72
MARGIN = 16
CHAR_W = 7.3  # 12px monospace (DejaVu Sans Mono / Liberation Mono advance ~0.6em)
PAD = 14
MIN_W = 90
MAX_CHARS = 42
SWEEPS = 8

ARTIFACT_COLORS = ["#dbeafe", "#fde68a", "#d1fae5", "#fce7f3", "#e0e7ff", "#fee2e2", "#ccfbf1", "#fef3c7", "#ede9fe", "#e2e8f0"]
RUN_COLOR = "#f1f5f9"


@dataclass
class PlacedNode:
    id: str
    kind: str
    type: str
    label: str
    text: str
    """The label, shortened to fit the box; the full label goes in a tooltip."""
    href: str | None
    x: float
    y: float
    w: float
    h: float
    fill: str
    root: bool

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class PlacedEdge:
    source: str
    target: str
    relation: str
    d: str
    title: str


@dataclass
class Layout:
    width: float
    height: float
    nodes: list[PlacedNode] = field(default_factory=list)
    edges: list[PlacedEdge] = field(default_factory=list)
    legend: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, type, fill) for each node type shown."""


def type_color(type_name: str) -> str:
    return ARTIFACT_COLORS[zlib.crc32(type_name.encode()) % len(ARTIFACT_COLORS)]


def _fill(node: Node) -> str:
    return RUN_COLOR if node.kind == "run" else type_color(node.type)


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_CHARS else label[: MAX_CHARS - 1] + "…"


def order_layers(graph: LineageGraph) -> list[list[str]]:
    """Node ids per layer, left to right, each layer ordered to reduce edge crossings."""
    layer = graph.layers()
    if not layer:
        return []
    columns: list[list[str]] = [[] for _ in range(max(layer.values()) + 1)]
    for nid in sorted(graph.nodes, key=lambda n: (graph.nodes[n].kind, graph.nodes[n].type, graph.nodes[n].label, n)):
        columns[layer[nid]].append(nid)
    preds: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    succs: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    for src, dst in graph.edges:
        succs[src].append(dst)
        preds[dst].append(src)

    def centre(col: list[str]) -> dict[str, float]:
        half = (len(col) - 1) / 2
        return {nid: i - half for i, nid in enumerate(col)}

    pos: dict[str, float] = {}
    for col in columns:
        pos.update(centre(col))
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        indices = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        neighbours = preds if forward else succs
        for c in indices:
            col = columns[c]

            def key(nid: str) -> tuple[float, float]:
                around = [pos[m] for m in neighbours[nid]]
                return (sum(around) / len(around) if around else pos[nid], pos[nid])

            col.sort(key=key)
            pos.update(centre(col))
    return columns


def layout(graph: LineageGraph, href: Callable[[Node], str | None]) -> Layout:
    """Place every node of ``graph`` (already grouped or exploded) and route its edges."""
    columns = order_layers(graph)
    if not columns:
        return Layout(width=2 * MARGIN, height=2 * MARGIN)
    widths = {nid: max(MIN_W, len(_shorten(node.label)) * CHAR_W + 2 * PAD) for nid, node in graph.nodes.items()}
    col_w = [max(widths[n] for n in col) if col else MIN_W for col in columns]
    tallest = max(len(col) for col in columns)
    inner_h = tallest * NODE_H + (tallest - 1) * V_GAP
    placed: dict[str, PlacedNode] = {}
    x = MARGIN
    for c, col in enumerate(columns):
        col_h = len(col) * NODE_H + (len(col) - 1) * V_GAP
        y0 = MARGIN + (inner_h - col_h) / 2
        for i, nid in enumerate(col):
            node = graph.nodes[nid]
            w = widths[nid]
            placed[nid] = PlacedNode(
                id=nid, kind=node.kind, type=node.type, label=node.label, text=_shorten(node.label), href=href(node),
                x=round(x + (col_w[c] - w) / 2, 1), y=round(y0 + i * (NODE_H + V_GAP), 1), w=round(w, 1), h=NODE_H,
                fill=_fill(node), root=nid == graph.root,
            )
        x += col_w[c] + H_GAP
    edges = []
    for src, dst in sorted(graph.edges):
        a, b = placed[src], placed[dst]
        x1, y1, x2, y2 = a.x + a.w, a.cy, b.x - 2, b.cy
        bend = max(28.0, (x2 - x1) / 2) if x2 > x1 else 60.0
        d = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        relation = "produces" if a.kind == "run" else "consumed by"
        edges.append(PlacedEdge(src, dst, "produces" if a.kind == "run" else "consumes", d, f"{a.label} {relation} {b.label}"))
    legend = sorted({(n.kind, n.type, n.fill) for n in placed.values()})
    return Layout(width=round(x - H_GAP + MARGIN, 1), height=round(inner_h + 2 * MARGIN, 1),
                  nodes=[placed[n] for col in columns for n in col], edges=edges, legend=legend)
