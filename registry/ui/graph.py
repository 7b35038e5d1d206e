"""The Graph View: a layered left-to-right drawing of a lineage graph, computed in Python.

Each node goes in the column ``LineageGraph.layers()`` gives it (one step right of everything
it comes from); the type-level view is usually cyclic (``dataset -> preprocess-data ->
dataset``), and the edges that close a cycle (``LineageGraph.back_edges()``) are drawn
backwards. Here the order inside each column is improved by a few barycenter sweeps so arrows
cross less, and boxes and curves get their coordinates; the template draws the result as
inline SVG. No JavaScript, no graph library.
"""
from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..lineage import LineageGraph, Node

NODE_H = 40
V_GAP = 18
H_GAP = 56
MARGIN = 16
CHAR_W = 7.3  # 12px monospace (DejaVu Sans Mono / Liberation Mono advance ~0.6em)
SMALL_W = 6.1  # 10px monospace, the small first line
PAD = 12
MIN_W = 84
MAX_CHARS = 34
SWEEPS = 8
DUMMY_H = 6
PAIR_OFFSET = 8

ARTIFACT_COLORS = [
    "#dbeafe", "#fde68a", "#d1fae5", "#fce7f3", "#e0e7ff",
    "#fee2e2", "#ccfbf1", "#fef3c7", "#ede9fe", "#e2e8f0",
]
RUN_COLOR = "#f1f5f9"

DummyPoint = tuple[float, float, float]
"""Where an edge crosses a column: (left x, right x, y)."""


@dataclass
class PlacedNode:
    id: str
    kind: str
    type: str
    label: str
    """The full label (``dataset:mnist-raw:v0``, ``load-data:sunny-smoke-1`` or a type name)."""
    kicker: str
    """Small first line: the type (instances) or "artifact type" / "job type" (grouped)."""
    text: str
    """Second line: the name, shortened to fit; the full label goes in a tooltip."""
    href: str | None
    x: float
    y: float
    w: float
    h: float
    fill: str
    root: bool

    @property
    def cx(self) -> float:
        return round(self.x + self.w / 2, 1)

    @property
    def cy(self) -> float:
        return round(self.y + self.h / 2, 1)


@dataclass
class PlacedEdge:
    source: str
    target: str
    relation: str
    d: str
    title: str
    back: bool


@dataclass
class Layout:
    width: float
    height: float
    nodes: list[PlacedNode] = field(default_factory=list)
    edges: list[PlacedEdge] = field(default_factory=list)
    columns: int = 0


def type_color(type_name: str) -> str:
    return ARTIFACT_COLORS[zlib.crc32(type_name.encode()) % len(ARTIFACT_COLORS)]


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _lines(node: Node, grouped: bool) -> tuple[str, str]:
    if grouped:
        return ("artifact type" if node.kind == "artifact" else "job type"), node.label
    kicker, sep, rest = node.label.partition(":")
    return (kicker, rest) if sep else (node.kind, node.label)


def _rank(graph: LineageGraph, item: str) -> tuple:
    """The first order inside a column: nodes by kind, type and label, then the dummy points."""
    node = graph.nodes.get(item)
    return (node.kind, node.type, node.label, item) if node is not None else ("~", item)


@dataclass
class _Edge:
    source: str
    target: str
    reversed: bool
    """Closes a cycle: laid out from ``target`` to ``source`` and drawn back."""
    chain: list[str] = field(default_factory=list)
    """Layout order: the left end, the dummy points in between, the right end."""


def order_columns(items: dict[str, int], links: list[tuple[str, str]],
                  rank: Callable[[str], tuple]) -> list[list[str]]:
    """Ids per column, left to right, each column ordered by barycenter sweeps to reduce crossings."""
    columns: list[list[str]] = [[] for _ in range(max(items.values()) + 1)]
    for item in sorted(items, key=rank):
        columns[items[item]].append(item)
    preds: dict[str, list[str]] = {i: [] for i in items}
    succs: dict[str, list[str]] = {i: [] for i in items}
    for src, dst in links:
        succs[src].append(dst)
        preds[dst].append(src)

    def centre(col: list[str]) -> dict[str, float]:
        half = (len(col) - 1) / 2
        return {item: i - half for i, item in enumerate(col)}

    pos: dict[str, float] = {}
    for col in columns:
        pos.update(centre(col))
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        indices = range(1, len(columns)) if forward else range(len(columns) - 2, -1, -1)
        neighbours = preds if forward else succs
        for c in indices:
            col = columns[c]

            def key(item: str, neighbours: dict[str, list[str]] = neighbours) -> tuple[float, float]:
                around = [pos[m] for m in neighbours[item]]
                return (sum(around) / len(around) if around else pos[item], pos[item])

            col.sort(key=key)
            pos.update(centre(col))
    return columns


def layout(graph: LineageGraph, href: Callable[[Node], str | None], grouped: bool = False) -> Layout:
    """Place every node of ``graph`` (grouped by type or exploded) and route its edges.

    Edges spanning several columns pass through dummy points (one per column crossed) that
    take part in the ordering, so they run between nodes instead of through them.
    """
    if not graph.nodes:
        return Layout(width=2 * MARGIN, height=2 * MARGIN)
    edges, items, links = _route(graph)
    columns = order_columns(items, links, functools.partial(_rank, graph))
    placed, dummies, width, height = _place(graph, columns, href, grouped)
    nodes = [placed[i] for col in columns for i in col if i in placed]
    return Layout(width=width, height=height, nodes=nodes, edges=_draw(edges, placed, dummies),
                  columns=len(columns))


def _route(graph: LineageGraph) -> tuple[list[_Edge], dict[str, int], list[tuple[str, str]]]:
    """(every edge with its chain, the column of every node and dummy point, the links along the chains)."""
    layer, back = graph.layers(), graph.back_edges()
    edges = [_Edge(s, d, (s, d) in back) for s, d in sorted(graph.edges)]
    items = dict(layer)
    links: list[tuple[str, str]] = []
    for n, edge in enumerate(edges):
        left, right = (edge.target, edge.source) if edge.reversed else (edge.source, edge.target)
        crossed = range(layer[left] + 1, layer[right])
        dummies = [f"\0dummy{n}:{col}" for col in crossed]
        items.update(zip(dummies, crossed))
        edge.chain = [left, *dummies, right]
        links.extend(itertools.pairwise(edge.chain))
    return edges, items, links


def _place(graph: LineageGraph, columns: list[list[str]], href: Callable[[Node], str | None],
           grouped: bool) -> tuple[dict[str, PlacedNode], dict[str, DummyPoint], float, float]:
    """(boxes, dummy points, width, height): columns as wide as their widest box, centred."""
    lines = {nid: _lines(node, grouped) for nid, node in graph.nodes.items()}
    widths = {nid: _width(*lines[nid]) for nid in graph.nodes}
    col_w = [max((widths[i] for i in col if i in widths), default=MIN_W) for col in columns]
    col_h = [sum(NODE_H if i in graph.nodes else DUMMY_H for i in col) + V_GAP * (len(col) - 1)
             for col in columns]
    inner_h = max(col_h)
    placed: dict[str, PlacedNode] = {}
    dummies: dict[str, DummyPoint] = {}
    x: float = MARGIN
    for c, col in enumerate(columns):
        y = MARGIN + (inner_h - col_h[c]) / 2
        for item in col:
            node = graph.nodes.get(item)
            if node is None:
                dummies[item] = (x, x + col_w[c], y + DUMMY_H / 2)
                y += DUMMY_H + V_GAP
                continue
            left = x + (col_w[c] - widths[item]) / 2
            placed[item] = _box(node, lines[item], href(node), left, y, widths[item], item == graph.root)
            y += NODE_H + V_GAP
        x += col_w[c] + H_GAP
    return placed, dummies, round(x - H_GAP + MARGIN, 1), round(inner_h + 2 * MARGIN, 1)


def _width(kicker: str, text: str) -> float:
    return max(MIN_W, len(_shorten(text)) * CHAR_W + 2 * PAD, len(_shorten(kicker)) * SMALL_W + 2 * PAD)


def _box(node: Node, lines: tuple[str, str], href: str | None, x: float, y: float, w: float,
         root: bool) -> PlacedNode:
    return PlacedNode(
        id=node.id, kind=node.kind, type=node.type, label=node.label,
        kicker=_shorten(lines[0]), text=_shorten(lines[1]),
        href=href, x=round(x, 1), y=round(y, 1), w=round(w, 1), h=NODE_H,
        fill=RUN_COLOR if node.kind == "run" else type_color(node.type), root=root,
    )


def _draw(edges: list[_Edge], placed: dict[str, PlacedNode],
          dummies: dict[str, DummyPoint]) -> list[PlacedEdge]:
    """Every edge as an SVG path; the two edges between the same two nodes (closing a cycle) sit side
    by side."""
    pairs: dict[frozenset[str], list[_Edge]] = {}
    for edge in edges:
        pairs.setdefault(frozenset((edge.source, edge.target)), []).append(edge)
    drawn = []
    for edge in edges:
        twins = pairs[frozenset((edge.source, edge.target))]
        offset = (twins.index(edge) - (len(twins) - 1) / 2) * PAIR_OFFSET
        a, b = placed[edge.source], placed[edge.target]
        relation = "produces" if a.kind == "run" else "links" if b.kind == "artifact" else "consumes"
        verb = {"produces": "produces", "consumes": "is consumed by", "links": "is linked as"}[relation]
        path = _path(_points(edge, placed, dummies, offset), edge.reversed)
        drawn.append(PlacedEdge(edge.source, edge.target, relation, path, f"{a.label} {verb} {b.label}",
                                edge.reversed))
    return drawn


def _points(edge: _Edge, placed: dict[str, PlacedNode], dummies: dict[str, DummyPoint],
            offset: float) -> list[tuple[float, float]]:
    """From the source's side, across each dummy point's column, to 2px short of the target's side."""
    left, right = placed[edge.chain[0]], placed[edge.chain[-1]]
    points = [(left.x + left.w, left.cy + offset)]
    for dummy in edge.chain[1:-1]:
        lx, rx, dy = dummies[dummy]
        points += [(lx, dy + offset), (rx, dy + offset)]
    points.append((right.x, right.cy + offset))
    if edge.reversed:
        points.reverse()
        points[-1] = (points[-1][0] + 2, points[-1][1])
    else:
        points[-1] = (points[-1][0] - 2, points[-1][1])
    return points


def _path(points: list[tuple[float, float]], leftward: bool) -> str:
    """Curves between columns (horizontal tangents), straight runs across dummy points."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    px, py = x0, y0
    for i, (qx, qy) in enumerate(rest):
        if i % 2 == 0:  # from a node side or a dummy's far end to the next dummy or node
            bend = abs(qx - px) / 2
            sign = -1 if leftward else 1
            d.append(f"C{px + sign * bend:.1f},{py:.1f} {qx - sign * bend:.1f},{qy:.1f} {qx:.1f},{qy:.1f}")
        else:  # across a dummy's column
            d.append(f"L{qx:.1f},{qy:.1f}")
        px, py = qx, qy
    return " ".join(d)
