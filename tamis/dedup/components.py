"""Connected components of the near-duplicate graph in rounds that scale out: the pure steps.

A union-find in one process holds every linked document. These steps
instead alternate the *large-star* and *small-star* operations of Kiveris et
al., "Connected Components in MapReduce and Beyond" (SoCC 2014), each a
grouping by node, so a worker only ever holds one node's neighbours:

- `large_star(u, Γ(u))`: every neighbour v > u is linked to m, the smallest
  of u and its neighbours.
- `small_star(u, {v ∈ Γ(u): v < u})`: u and its smaller neighbours are all
  linked to the smallest of them.

Both keep each component connected and never join two components; their
common fixed point is a forest of stars, each centred on the smallest node
of its component (proven to take O(log² n) rounds; about log n in practice).
Plain min-label propagation needs as many rounds as a component's diameter:
a chain of 1,000 near-copies takes 1,000 rounds, here 12 (measured, see
docs/dedup.md).

Nodes are any hashable, totally ordered values; the near-dup stage uses
(keep rank, row reference), so the smallest node of a component *is* the
document the keep rule keeps and the star's leaves are the drops: the same
decisions as `UnionFind` + `tamis.dedup.neardup.drops`.

`settle` checks a node of the final graph: a star's centre or leaf is
settled; anything else means the rounds did not converge. `contract`
shrinks a bounded chunk of edges to stars with a local union-find first,
which leaves the same components and usually nothing for the rounds to do.
`components` runs the rounds in one process (tests, and the round counts
quoted in the docs).
"""

from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

Node = Any  # hashable and totally ordered: the near-dup stage's (rank, (batch key, row))
Edge = tuple[Node, Node]


class UnionFind:
    """Disjoint sets (path halving); every set's root is its smallest element."""

    def __init__(self):
        self.parent: dict[Hashable, Hashable] = {}

    def find(self, x):
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo

    def merge(self, other: "UnionFind") -> None:
        for x, p in other.parent.items():
            self.union(x, p)

    def clusters(self) -> dict:
        out: dict = {}
        for x in self.parent:
            out.setdefault(self.find(x), []).append(x)
        return out


def large_star(u: Node, neighbours: Iterable[Node]) -> tuple[list[Edge], int]:
    """(edges (v, m) for every neighbour v > u, how many of them changed): m is the smallest of u and Γ(u)."""
    ns = set(neighbours)
    m = min(min(ns), u) if ns else u
    out = [(v, m) for v in sorted(ns) if v > u]
    return out, (len(out) if m != u else 0)


def small_star(u: Node, smaller: Iterable[Node]) -> tuple[list[Edge], int]:
    """(edges linking u and its smaller neighbours to the smallest of them, how many changed)."""
    ns = set(smaller)
    if not ns:
        return [], 0
    m = min(ns)
    return [(v, m) for v in sorted(ns | {u}) if v != m], len(ns) - 1


def settle(u: Node, neighbours: Iterable[Node]) -> tuple[str, list[Node]]:
    """("centre", its leaves) | ("leaf", []) | ("unsettled", []) for a node of the final graph.

    Every node is a centre (all neighbours larger) or a leaf (one neighbour,
    smaller) exactly when the graph is a forest of stars centred on their
    components' smallest nodes: then a centre's leaves are its whole component.
    """
    ns = sorted(set(neighbours))
    if ns and ns[0] > u:
        return "centre", ns
    if len(ns) == 1:
        return "leaf", []
    return "unsettled", []


def contract(edges: Iterable[Edge]) -> Iterator[Edge]:
    """The same components as `edges`, as stars (node, smallest node of its component), by union-find."""
    uf = UnionFind()
    for a, b in edges:
        uf.union(a, b)
    for x in sorted(uf.parent):
        root = uf.find(x)
        if root != x:
            yield x, root


def both_ways(edges: Iterable[Edge]) -> Iterator[Edge]:
    """Each edge keyed by either end: the grouping that `large_star` and `settle` need."""
    for a, b in edges:
        yield a, b
        yield b, a


def downward(edges: Iterable[Edge]) -> Iterator[Edge]:
    """Each edge keyed by its larger end: the grouping that `small_star` needs."""
    for a, b in edges:
        yield (a, b) if a > b else (b, a)


def _grouped(keyed: Iterable[Edge]) -> dict:
    out: dict = defaultdict(list)
    for k, v in keyed:
        out[k].append(v)
    return out


def components(edges: Iterable[Edge], max_rounds: int) -> tuple[dict[Node, Node], int, bool]:
    """In one process: (node → smallest node of its component, rounds that changed something, converged).

    Runs the same steps as the Beam stage, round by round, until a round
    changes nothing or `max_rounds` rounds ran.
    """
    current = list(edges)
    rounds = 0
    for _ in range(max_rounds):
        changed = 0
        large: list[Edge] = []
        for u, ns in _grouped(both_ways(current)).items():
            out, c = large_star(u, ns)
            large += out
            changed += c
        current = []
        for u, ns in _grouped(downward(large)).items():
            out, c = small_star(u, ns)
            current += out
            changed += c
        if not changed:
            break
        rounds += 1
    labels: dict[Node, Node] = {}
    converged = True
    for u, ns in _grouped(both_ways(current)).items():
        kind, leaves = settle(u, ns)
        if kind == "centre":
            labels[u] = u
            labels.update((v, u) for v in leaves)
        converged &= kind != "unsettled"
    return labels, rounds, converged
