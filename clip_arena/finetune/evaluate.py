"""Retrieval metrics for catalogs and fine-tuning: text-to-image recall@k and image-to-image
precision@k of same-category neighbours."""

from __future__ import annotations

import numpy as np


def text_to_image_recall(text_vecs: np.ndarray, image_vecs: np.ndarray, ks=(1, 5, 10)) -> dict[str, float]:
    """Caption i belongs to image i: the share of captions whose image ranks in the top k."""
    sims = text_vecs @ image_vecs.T
    correct = sims[np.arange(len(sims)), np.arange(len(sims))]
    rank = (sims > correct[:, None]).sum(axis=1)  # 0 = first
    return {f"recall@{k}": float(np.mean(rank < k)) for k in ks}


def precision_per_query(query_vecs: np.ndarray, query_rows: np.ndarray, all_vecs: np.ndarray, labels: np.ndarray,
                        k: int = 4) -> np.ndarray:
    """For each query, the share of its k nearest catalog images (itself excluded) with its label."""
    sims = query_vecs @ all_vecs.T
    sims[np.arange(len(query_rows)), query_rows] = -np.inf
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return (labels[top] == labels[query_rows][:, None]).mean(axis=1)


def precision_at_k(query_vecs: np.ndarray, query_rows: np.ndarray, all_vecs: np.ndarray, labels: np.ndarray,
                   k: int = 4) -> float:
    """precision_per_query averaged over the queries."""
    return float(np.mean(precision_per_query(query_vecs, query_rows, all_vecs, labels, k)))
