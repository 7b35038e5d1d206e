"""The lineage graph: runs and artifact versions joined by "consumes" and "produces" arrows.

Built by ``Api.lineage``; shown grouped by type (artifacts by ``type``, runs by ``job_type``)
or exploded to instances (``dataset:mnist-raw:v1``, ``load-data:sunny-smoke-1``), as text,
Mermaid, Graphviz DOT or JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["both", "upstream", "downstream"]
"""Which side of a version a lineage graph follows: what it was made from, what was made from it."""


def relation(source: Node, target: Node) -> str:
    """``produces`` (run -> version), ``consumes`` (version -> run), ``links`` (version -> its
    registry link)."""
    if source.kind == "run":
        return "produces"
    return "links" if target.kind == "artifact" else "consumes"


@dataclass(frozen=True)
class Node:
    id: str
    kind: Literal["artifact", "run"]
    type: str
    """Artifact type or run job type: the node's group when not exploded."""
    label: str
    """Instance label, e.g. ``dataset:mnist-raw:v1`` or ``load-data:sunny-smoke-1``."""
    ref: str
    """``project/name:vN`` for an artifact, ``project/run-id`` for a run."""


@dataclass
class LineageGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    root: str | None = None

    def add_edge(self, source: Node, target: Node) -> None:
        self.nodes.setdefault(source.id, source)
        self.nodes.setdefault(target.id, target)
        self.edges.add((source.id, target.id))

    def view(self, explode: bool = False) -> LineageGraph:
        """This graph at instance level (``explode``) or grouped by type / job type."""
        if explode:
            return self
        grouped = LineageGraph()

        def group(node: Node) -> Node:
            gid = f"{node.kind}-type:{node.type}"
            return Node(gid, node.kind, node.type, node.type, node.type)

        for node in self.nodes.values():
            grouped.nodes.setdefault(group(node).id, group(node))
        for src, dst in self.edges:
            grouped.add_edge(group(self.nodes[src]), group(self.nodes[dst]))
        if self.root:
            grouped.root = group(self.nodes[self.root]).id
        return grouped

    def layers(self) -> dict[str, int]:
        """Left-to-right layer of each node: one more than the highest layer it comes from.

        The grouped view has cycles (``dataset -> preprocess-data -> dataset``); the edges that
        close one (``back_edges()``) are left out, so every other edge points to a higher layer.

        >>> g = LineageGraph()
        >>> g.add_edge(Node("r", "run", "load", "load:r", "p/r"),
        ...            Node("a", "artifact", "data", "data:a:v0", "p/a:v0"))
        >>> g.layers()
        {'r': 0, 'a': 1}
        """
        order, back, children = self._depth_first()
        layer = dict.fromkeys(self.nodes, 0)
        for node in reversed(order):  # a topological order of the graph without back edges
            for child in children[node]:
                if (node, child) not in back:
                    layer[child] = max(layer[child], layer[node] + 1)
        return layer

    def back_edges(self) -> set[tuple[str, str]]:
        """The edges that close a cycle: the only ones not pointing to a higher layer (drawn backwards)."""
        return self._depth_first()[1]

    def _rank(self, node_id: str) -> tuple[str, str, str, str]:
        node = self.nodes[node_id]
        return (node.kind, node.type, node.label, node_id)

    def _depth_first(self) -> tuple[list[str], set[tuple[str, str]], dict[str, list[str]]]:
        """(nodes in post-order, edges back to a node on the search path, children of each node).

        The search starts from the sources, then the root, then whatever is left (a cycle that
        nothing leads into), children in a fixed order: so a cycle is broken at the edge that
        points back upstream, and the same graph is always broken the same way.
        """
        children: dict[str, list[str]] = {nid: [] for nid in self.nodes}
        for src, dst in self.edges:
            children[src].append(dst)
        for listed in children.values():
            listed.sort(key=self._rank)
        targets = {dst for _, dst in self.edges}
        ranked = sorted(self.nodes, key=self._rank)
        sources = [n for n in ranked if n not in targets]
        root = [self.root] if self.root in self.nodes else []
        starts = sources + root + ranked
        state: dict[str, int] = {}  # 1: on the search path, 2: done
        order: list[str] = []
        back: set[tuple[str, str]] = set()
        for start in (s for s in starts if s not in state):
            state[start] = 1
            stack = [(start, iter(children[start]))]
            while stack:
                node, kids = stack[-1]
                child = next(kids, None)
                if child is None:
                    state[node] = 2
                    order.append(node)
                    stack.pop()
                elif state.get(child) == 1:
                    back.add((node, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, iter(children[child])))
        return order, back, children

    def ordered_edges(self) -> list[tuple[Node, Node]]:
        layer = self.layers()
        pairs = ((self.nodes[s], self.nodes[d]) for s, d in self.edges)
        return sorted(pairs, key=lambda e: (layer[e[0].id], e[0].label, e[1].label))

    @staticmethod
    def verb(source: Node, target: Node | None = None) -> str:
        if target is not None and source.kind == target.kind == "artifact":
            return "linked as"
        return "produces" if source.kind == "run" else "consumed by"

    def to_text(self, explode: bool = False) -> str:
        graph = self.view(explode)
        lines = [
            f"{s.label} ({s.kind}) --{graph.verb(s, d)}--> {d.label} ({d.kind})"
            for s, d in graph.ordered_edges()
        ]
        linked = {nid for edge in graph.edges for nid in edge}
        lonely = [n for n in graph.nodes.values() if n.id not in linked]
        lines += [f"{n.label} ({n.kind})" for n in lonely]
        return "\n".join(lines)

    def to_mermaid(self, explode: bool = False) -> str:
        graph = self.view(explode)
        ids = {nid: f"n{i}" for i, nid in enumerate(sorted(graph.nodes))}
        lines = ["graph LR"]
        for nid in sorted(graph.nodes):
            node = graph.nodes[nid]
            text = node.label.replace('"', "'")
            lines.append(f'    {ids[nid]}(["{text}"])' if node.kind == "run" else f'    {ids[nid]}["{text}"]')
        for s, d in graph.ordered_edges():
            lines.append(f"    {ids[s.id]} -->|{relation(s, d)}| {ids[d.id]}")
        return "\n".join(lines)

    def to_dot(self, explode: bool = False) -> str:
        graph = self.view(explode)
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for nid in sorted(graph.nodes):
            node = graph.nodes[nid]
            shape = "ellipse" if node.kind == "run" else "box"
            lines.append(f"  {json.dumps(nid)} [label={json.dumps(node.label)}, shape={shape}];")
        for s, d in graph.ordered_edges():
            lines.append(f"  {json.dumps(s.id)} -> {json.dumps(d.id)} [label={relation(s, d)}];")
        lines.append("}")
        return "\n".join(lines)

    def to_dict(self, explode: bool = False) -> dict:
        graph = self.view(explode)
        layer = graph.layers()
        return {
            "root": graph.root,
            "nodes": [
                {"id": n.id, "kind": n.kind, "type": n.type, "label": n.label, "ref": n.ref,
                 "layer": layer[n.id]}
                for n in sorted(graph.nodes.values(), key=lambda n: n.id)
            ],
            "edges": [
                {"source": s, "target": d,
                 "relation": relation(graph.nodes[s], graph.nodes[d])}
                for s, d in sorted(graph.edges)
            ],
        }
