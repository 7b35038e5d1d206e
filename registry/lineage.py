"""The lineage graph: runs and artifact versions joined by "consumes" and "produces" arrows.

Built by ``Api.lineage``; shown grouped by type (artifacts by ``type``, runs by ``job_type``)
or exploded to instances (``dataset:mnist-raw:v1``, ``load-data:sunny-smoke-1``), as text,
Mermaid, Graphviz DOT or JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal


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

    def view(self, explode: bool = False) -> "LineageGraph":
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
        """Left-to-right layer of each node: the longest path from a source.

        The grouped view has cycles (``dataset -> preprocess-data -> dataset``); edges that
        close a cycle, found by a depth-first search, are left out of the layering.
        """
        out: dict[str, list[str]] = {nid: [] for nid in self.nodes}
        for src, dst in sorted(self.edges):
            out[src].append(dst)
        state: dict[str, int] = {}
        order: list[str] = []
        back: set[tuple[str, str]] = set()
        for start in sorted(self.nodes):
            if start in state:
                continue
            stack = [(start, iter(out[start]))]
            state[start] = 1
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    state[node] = 2
                    order.append(node)
                    stack.pop()
                elif state.get(child) == 1:
                    back.add((node, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, iter(out[child])))
        layer = {nid: 0 for nid in self.nodes}
        for node in reversed(order):  # topological order of the graph without back edges
            for child in out[node]:
                if (node, child) not in back:
                    layer[child] = max(layer[child], layer[node] + 1)
        return layer

    def _ordered_edges(self) -> list[tuple[Node, Node]]:
        layer = self.layers()
        return sorted(((self.nodes[s], self.nodes[d]) for s, d in self.edges), key=lambda e: (layer[e[0].id], e[0].label, e[1].label))

    @staticmethod
    def verb(source: Node) -> str:
        return "produces" if source.kind == "run" else "consumed by"

    def to_text(self, explode: bool = False) -> str:
        graph = self.view(explode)
        lines = [f"{s.label} ({s.kind}) --{graph.verb(s)}--> {d.label} ({d.kind})" for s, d in graph._ordered_edges()]
        lonely = [n for n in graph.nodes.values() if not any(n.id in e for e in graph.edges)]
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
        for s, d in graph._ordered_edges():
            lines.append(f"    {ids[s.id]} -->|{'produces' if s.kind == 'run' else 'consumes'}| {ids[d.id]}")
        return "\n".join(lines)

    def to_dot(self, explode: bool = False) -> str:
        graph = self.view(explode)
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for nid in sorted(graph.nodes):
            node = graph.nodes[nid]
            shape = "ellipse" if node.kind == "run" else "box"
            lines.append(f"  {json.dumps(nid)} [label={json.dumps(node.label)}, shape={shape}];")
        for s, d in graph._ordered_edges():
            lines.append(f"  {json.dumps(s.id)} -> {json.dumps(d.id)} [label={'produces' if s.kind == 'run' else 'consumes'}];")
        lines.append("}")
        return "\n".join(lines)

    def to_dict(self, explode: bool = False) -> dict:
        graph = self.view(explode)
        layer = graph.layers()
        return {
            "root": graph.root,
            "nodes": [{"id": n.id, "kind": n.kind, "type": n.type, "label": n.label, "ref": n.ref, "layer": layer[n.id]} for n in sorted(graph.nodes.values(), key=lambda n: n.id)],
            "edges": [{"source": s, "target": d, "relation": "produces" if graph.nodes[s].kind == "run" else "consumes"} for s, d in sorted(graph.edges)],
        }
