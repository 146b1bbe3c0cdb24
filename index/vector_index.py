"""One FAISS inner-product index per method, persisted beside the catalog.

Exact search (IndexFlatIP) up to EXACT_MAX rows: at that size a query costs about a millisecond
and nothing is approximated. Above it, HNSW (IndexHNSWFlat, M=32): no training step, graph
search in a few milliseconds at a million rows, recall tuned with efSearch. Every index file
carries a fingerprint of the embeddings it was built from; a stale one is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from core.errors import UserError
from index.catalog import Catalog

EXACT_MAX = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def fingerprint(vectors: np.ndarray) -> str:
    """blake2b of the vectors' bytes and shape: changes when any value or the row order changes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(vectors.shape).encode())
    h.update(np.ascontiguousarray(vectors).data)
    return h.hexdigest()


def index_paths(catalog_path: Path, method: str) -> tuple[Path, Path]:
    stem = catalog_path.with_suffix("")
    return Path(f"{stem}.{method}.faiss"), Path(f"{stem}.{method}.faiss.json")


def build_index(vectors: np.ndarray, kind: str | None = None) -> faiss.Index:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    kind = kind or ("flat" if len(vectors) <= EXACT_MAX else "hnsw")
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise UserError(f"Unknown index kind {kind!r}; use flat or hnsw.")
    index.add(vectors)
    return index


def kind_of(index: faiss.Index) -> str:
    return "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"


@dataclass
class MethodIndex:
    method: str
    index: faiss.Index
    fingerprint: str

    @property
    def kind(self) -> str:
        return kind_of(self.index)

    def search(self, queries: np.ndarray, k: int, exclude_rows=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query, best first, with a query's own row left out when given."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        extra = 1 if exclude_rows is not None else 0
        scores, rows = self.index.search(queries, k + extra)
        if exclude_rows is None:
            return scores, rows
        exclude = np.asarray(exclude_rows).reshape(-1, 1)
        keep = rows != exclude
        out_scores = np.full((len(rows), k), -np.inf, np.float32)
        out_rows = np.full((len(rows), k), -1, np.int64)
        for i in range(len(rows)):  # per query: drop its own row, keep order
            r, s = rows[i][keep[i]][:k], scores[i][keep[i]][:k]
            out_rows[i, : len(r)], out_scores[i, : len(s)] = r, s
        return out_scores, out_rows


def _read(path: Path) -> faiss.Index:
    try:  # memory-map where FAISS supports it (flat and HNSW storage), else read into RAM
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:
        return faiss.read_index(str(path))


def load_or_build(catalog: Catalog, method: str, rebuild: bool = False, kind: str | None = None,
                  vectors: np.ndarray | None = None) -> tuple[MethodIndex, str]:
    """The method's index, loaded if fresh, else (re)built and saved. Returns (index, action)."""
    vectors = catalog.embeddings(method) if vectors is None else vectors
    fp = fingerprint(vectors)
    if catalog.path is None:
        return MethodIndex(method, build_index(vectors, kind), fp), "built"
    index_path, meta_path = index_paths(catalog.path, method)
    if not rebuild and index_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fp and (kind is None or meta.get("kind") == kind):
            return MethodIndex(method, _read(index_path), fp), "loaded"
    action = "rebuilt" if index_path.exists() else "built"
    index = build_index(vectors, kind)
    tmp = index_path.with_name(index_path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, index_path)
    meta_path.write_text(json.dumps({"fingerprint": fp, "kind": kind_of(index), "rows": len(vectors),
                                     "dim": int(vectors.shape[1])}))
    return MethodIndex(method, index, fp), action
