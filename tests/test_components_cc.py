"""Near-dup clusters by large-star/small-star rounds: the same clusters and drops as one union-find."""

import json
import random

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline_fixtures import make_cfg, write_jsonl

from tamis.dedup.components import UnionFind, components, contract, large_star, settle, small_star
from tamis.dedup.neardup import NearDupConfig, cluster_drops, drops, near_duplicates, node
from tamis.errors import ConfigError
from tamis.pipelines import curate
from tamis.pipelines.components import StarRounds, UnionFindClusters, rounds_needed, summary_from_metrics


def union_find_labels(edges) -> dict:
    uf = UnionFind()
    for a, b in edges:
        uf.union(a, b)
    return {x: uf.find(x) for x in uf.parent}


def path(n: int, order: str) -> list[tuple[int, int]]:
    nodes = list(range(n))
    if order == "shuffled":
        random.Random(n).shuffle(nodes)
    elif order == "zigzag":  # alternates small and large ids along the path
        nodes = [i // 2 if i % 2 == 0 else n - 1 - i // 2 for i in range(n)]
    return [(nodes[i], nodes[i + 1]) for i in range(n - 1)]


graphs = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=120).map(
    lambda es: [(a, b) for a, b in es if a != b]
)


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_rounds_give_the_union_find_components(edges):
    labels, _, converged = components(edges, max_rounds=64)
    assert converged
    assert labels == union_find_labels(edges)


@settings(max_examples=200, deadline=None)
@given(graphs, st.randoms(use_true_random=False))
def test_contracting_any_chunks_keeps_the_components(edges, rng):
    cut = rng.randint(0, len(edges))
    stars = list(contract(edges[:cut])) + list(contract(edges[cut:]))
    assert components(stars, 64)[0] == union_find_labels(edges)


@settings(max_examples=200, deadline=None)
@given(graphs, st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=41, max_size=41), st.sampled_from(["first", "longest"]))
def test_near_dup_nodes_keep_the_same_member_as_union_find_drops(edges, scores, keep):
    """Ranks with ties (equal score and length) end on the id; nodes are ordered by a hash, drops by rank."""
    ids = [f"doc-{i:02d}" for i in range(41)]
    rank = {ids[i]: (-scores[i], -float(i % 3) if keep == "longest" else 0.0, ids[i]) for i in range(41)}
    nodes = {i: node(ids[i], rank[ids[i]], ((0, i // 10), i % 10)) for i in range(41)}
    uf = UnionFind()
    for a, b in edges:
        uf.union(ids[a], ids[b])
    want = {d: k for members in uf.clusters().values() for d, k in drops(members, rank)}
    labels, _, _ = components([(nodes[a], nodes[b]) for a, b in edges], 64)
    clusters: dict = {}
    for n, centre in labels.items():
        clusters.setdefault(centre, []).append(n)
    got = {d[1][2]: k[1][2] for members in clusters.values() for d, k in cluster_drops(members)}
    assert got == want


@pytest.mark.parametrize("order", ["sorted", "shuffled", "zigzag"])
def test_a_path_of_thousands_settles_within_the_default_cap(order):
    edges = path(5000, order)
    labels, rounds, converged = components(edges, NearDupConfig().max_rounds)
    assert converged and rounds <= NearDupConfig().max_rounds
    assert set(labels.values()) == {0} and len(labels) == 5000


def test_the_star_steps_on_a_small_graph():
    assert large_star(3, [1, 5, 7]) == ([(5, 1), (7, 1)], 2)
    assert large_star(1, [5, 7]) == ([(5, 1), (7, 1)], 0)  # the centre of a star: nothing changes
    assert small_star(9, [4, 2, 6]) == ([(4, 2), (6, 2), (9, 2)], 2)
    assert small_star(9, [2]) == ([(9, 2)], 0)
    assert settle(1, [5, 7]) == ("centre", [5, 7])
    assert settle(5, [1]) == ("leaf", [])
    assert settle(5, [1, 7])[0] == settle(5, [1, 2])[0] == "unsettled"


def test_max_rounds_is_checked():
    with pytest.raises(ConfigError):
        NearDupConfig(max_rounds=0)


# ------------------------------------------------------------------ the Beam transform


def _min_drops(members):
    kept = min(members)
    return [(m, kept) for m in sorted(members) if m != kept]


def _beam_drops(edges, tmp_path, **kw):
    opts = PipelineOptions(flags=[], tamis_spill_dir=str(tmp_path / "spill"))
    want = sorted((x, r) for x, r in union_find_labels(edges).items() if x != r)
    p = beam.Pipeline(runner=FnApiRunner(), options=opts)
    got = p | beam.Create(edges) | StarRounds(drops=_min_drops, **kw)
    assert_that(got, equal_to(want))
    result = p.run()
    result.wait_until_finish()
    return summary_from_metrics(result)


def test_beam_rounds_settle_a_long_path_and_report_each_round(tmp_path):
    summary = _beam_drops(path(2000, "sorted"), tmp_path, max_rounds=16, contract_edges=1)  # no contraction
    needed = rounds_needed(summary, 16)
    assert 5 <= needed <= 16 and summary["settle"]["unsettled"] == 0
    assert summary["contract"]["edges_in"] == 1999
    for r in range(1, 17):  # a path keeps n - 1 edges, each shuffled both ways into large-star
        assert summary[f"large{r:02d}"]["records"] == 2 * 1999 and summary[f"large{r:02d}"]["bytes"] > 0
        assert (summary[f"large{r:02d}"]["changed"] + summary[f"small{r:02d}"]["changed"] > 0) == (r <= needed)


def test_beam_rounds_fall_back_to_union_find_when_the_cap_is_too_low(tmp_path, caplog):
    summary = _beam_drops(path(300, "zigzag"), tmp_path, max_rounds=1, contract_edges=1)
    assert summary["settle"]["unsettled"] > 0
    assert "did not settle in 1 rounds" in caplog.text


def test_contraction_leaves_nothing_for_the_rounds(tmp_path):
    edges = path(500, "shuffled") + [(1000 + i, 1000 + (i * 7) % 50) for i in range(1, 50)]
    summary = _beam_drops(edges, tmp_path, max_rounds=2)
    linked = sum(x != r for x, r in union_find_labels(edges).items())  # a star per cluster: one edge per non-centre
    assert rounds_needed(summary, 2) == 0 and summary["large01"]["records"] == 2 * linked


def test_union_find_transform_gives_the_same_drops(tmp_path):
    edges = path(200, "shuffled") + [(500, 501), (502, 501)]
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(flags=[])) as p:
        got = p | beam.Create(edges) | UnionFindClusters(_min_drops)
        assert_that(got, equal_to(sorted((x, r) for x, r in union_find_labels(edges).items() if x != r)))


# ------------------------------------------------------------------ real near-dups


def test_both_clusterings_drop_the_same_webis_near_dups_in_curate(tmp_path, shared_data):
    """Real judged near-duplicate documents through `tamis curate`: star rounds = union-find = the local path."""
    import gzip

    docs = [json.loads(line) for line in gzip.open(shared_data / "curation/neardup/webis_s3_docs.jsonl.gz", "rt")]
    src = tmp_path / "in"
    src.mkdir()
    for f in range(3):
        write_jsonl(src / f"part{f}.jsonl", [{"id": d["id"], "text": d["text"]} for d in docs[f::3]])
    found = {}
    for clustering in ("star_rounds", "union_find"):
        out = tmp_path / clustering
        near = {"enabled": True, "clustering": clustering}
        cfg = make_cfg(src, out, near_dedup=near, exact_dedup={"enabled": False}, runner={"batch_size": 40})
        curate.run(cfg)
        found[clustering] = {
            d["id"]: d["dup_of"] for d in pq.read_table(out / "dropped").to_pylist() if d["stage"] == "near_dedup"
        }
    from tamis.filters.normalize import NormalizeConfig, normalize_batch
    from tamis.schema import documents

    normalized = normalize_batch(documents([{"id": d["id"], "text": d["text"]} for d in docs]), NormalizeConfig())
    local = near_duplicates([normalized], NearDupConfig())  # curate normalizes before it dedups
    assert found["star_rounds"] == found["union_find"] == local
    assert len(local) > 20 and len(set(local.values())) < len(local)  # real clusters, some with several drops
