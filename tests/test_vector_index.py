"""FAISS indices: exact equals numpy, HNSW recall, persistence and staleness, search CLI."""

import json

import numpy as np
import pytest

from clip_arena.core.errors import UserError

from catalog_helpers import unit_vectors, write_synthetic_catalog
from clip_arena.index.catalog import read_catalog
from clip_arena.index.search import Searcher
from clip_arena.index.vector_index import build_index, index_paths, load_or_build, MethodIndex
from cli_runner import run_cli


def brute_force(vectors, query_rows, k):
    scores = vectors[query_rows] @ vectors.T
    scores[np.arange(len(query_rows)), query_rows] = -np.inf  # the query itself
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_exact_search_equals_numpy_brute_force():
    vectors = unit_vectors(2000, 32)
    index = MethodIndex("m", build_index(vectors, "flat"), "fp")
    queries = np.arange(0, 2000, 37)
    _, rows = index.search(vectors[queries], 5, exclude_rows=queries)
    np.testing.assert_array_equal(rows, brute_force(vectors, queries, 5))
    assert not (rows == queries[:, None]).any()


@pytest.mark.parametrize("kind,dim", [("pq", 512), ("hnsw", 64)])
def test_approximate_recall_at_4_on_20k_vectors(kind, dim):
    vectors = unit_vectors(20_000, dim, seed=3)
    index = MethodIndex("m", build_index(vectors, kind), "fp", vectors)
    assert index.kind == kind
    queries = np.random.default_rng(1).choice(20_000, 300, replace=False)
    _, rows = index.search(vectors[queries], 4, exclude_rows=queries)
    truth = brute_force(vectors, queries, 4)
    recall = np.mean([len(set(a) & set(b)) / 4 for a, b in zip(rows, truth)])
    assert recall >= 0.95, recall
    assert not (rows == queries[:, None]).any()


def test_index_is_persisted_reused_and_rebuilt_when_stale(tmp_path):
    path = tmp_path / "c.parquet"
    write_synthetic_catalog(path, n=100, dim=8)
    _, action = load_or_build(read_catalog(path), "base")
    assert action == "built" and index_paths(path, "base")[0].is_file()
    meta = json.loads(index_paths(path, "base")[1].read_text())
    assert meta["kind"] == "flat" and meta["rows"] == 100
    assert load_or_build(read_catalog(path), "base")[1] == "loaded"
    write_synthetic_catalog(path, n=120, dim=8)  # the embeddings change
    assert load_or_build(read_catalog(path), "base")[1] == "rebuilt"
    assert load_or_build(read_catalog(path), "base", kind="hnsw")[0].kind == "hnsw"
    pq, action = load_or_build(read_catalog(path), "base", kind="pq")
    assert (pq.kind, action) == ("pq", "rebuilt")
    assert load_or_build(read_catalog(path), "base", kind="pq")[0].kind == "pq"  # loaded from disk


def test_searcher_excludes_the_query_and_returns_ids(tmp_path):
    path = tmp_path / "c.parquet"
    vectors = write_synthetic_catalog(path, n=300, dim=16)
    searcher = Searcher.open(read_catalog(path))
    results = searcher.search_id("finetuned", "img00042", k=4)
    expected = brute_force(vectors["finetuned"], np.array([42]), 4)[0]
    assert [r["image_id"] for r in results] == [f"img{i:05d}" for i in expected]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(float(vectors["finetuned"][42] @ vectors["finetuned"][expected[0]]), abs=1e-5)


def test_a_query_id_spelled_as_the_path_points_at_the_catalog_id(tmp_path):
    """`embed --images photos/` then `search --query-id photos/img00042`: on main, a bare "not in the
    catalog"."""
    path = tmp_path / "c.parquet"
    write_synthetic_catalog(path, n=50, dim=16)
    searcher = Searcher.open(read_catalog(path))
    with pytest.raises(UserError, match="did you mean 'img00042'"):
        searcher.row_of("photos/img00042")
    with pytest.raises(UserError, match=r"'nothing' is not in the catalog\.$"):
        searcher.row_of("nothing")


def test_index_and_searchrun_cli(tmp_path):
    path = tmp_path / "c.parquet"
    write_synthetic_catalog(path, n=100, dim=8)
    proc = run_cli("index", "--catalog", str(path))
    assert proc.returncode == 0 and "base: built flat index of 100 vectors" in proc.stdout
    proc = run_cli("search", "--catalog", str(path), "--method", "base", "--query-id", "img00007", "-k", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["method"] == "base" and out["query_id"] == "img00007" and len(out["results"]) == 3
    assert "img00007" not in [r["image_id"] for r in out["results"]]
    assert set(out["results"][0]) == {"image_id", "score"}
    for args, message in [(("--method", "nope", "--query-id", "img00007"), "no method 'nope'"),
                          (("--method", "base", "--query-id", "zzz"), "'zzz' is not in the catalog")]:
        proc = run_cli("search", "--catalog", str(path), *args)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
