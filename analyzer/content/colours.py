"""Dominant colours of an image: k-means in RGB on a thumbnail, named by the nearest CSS3 colour
in CIELAB (perceptual distance, so 'red' is not named 'crimson' because of a rounding in RGB)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MAX_COLOURS = 5
MIN_SHARE = 0.01
MERGE_DELTA_E = 12.0  # CIELAB distance under which two clusters are one colour to the eye
SAMPLE_SIDE = 96  # k-means on a thumbnail: shares barely move, the cost drops a hundredfold


def to_lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return lab.reshape(-1, 3)


@lru_cache(maxsize=1)
def _css_colours() -> tuple[list[str], np.ndarray]:
    import webcolors

    names = sorted(webcolors.names(webcolors.CSS3))
    rgb = np.array([tuple(webcolors.name_to_rgb(n)) for n in names], dtype=np.uint8)
    return names, to_lab(rgb)


def colour_name(rgb: np.ndarray) -> str:
    names, lab = _css_colours()
    target = to_lab(np.asarray(rgb, np.uint8).reshape(1, 3))
    return names[int(np.argmin(((lab - target) ** 2).sum(1)))]


def dominant_colours(rgb: np.ndarray, k: int = MAX_COLOURS) -> list[dict]:
    """Up to k colours, largest share first: [{hex, name, share}]; a share is of all pixels, and
    colours under MIN_SHARE (anti-aliasing, noise) are left out."""
    import cv2
    from sklearn.cluster import KMeans

    height, width = rgb.shape[:2]
    scale = SAMPLE_SIDE / max(height, width)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_NEAREST)  # nearest: no blended colours at edges
    pixels = rgb.reshape(-1, 3)
    distinct, inverse = np.unique(pixels, axis=0, return_inverse=True)
    if len(distinct) <= k:  # flat artwork: its exact colours, no clustering
        centres, labels = distinct.astype(np.float64), inverse.ravel()
    else:
        model = KMeans(n_clusters=k, n_init=4, random_state=0).fit(pixels.astype(np.float64))
        centres, labels = model.cluster_centers_, model.labels_
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
    centres, counts = _merge_close(centres, counts)
    out = []
    for i in np.argsort(-counts):
        if counts[i] / counts.sum() < MIN_SHARE:
            break
        colour = np.clip(np.rint(centres[i]), 0, 255).astype(np.uint8)
        out.append({"hex": "#{:02x}{:02x}{:02x}".format(*colour), "name": colour_name(colour),
                    "share": round(float(counts[i] / counts.sum()), 4)})
    return out


def _merge_close(centres: np.ndarray, counts: np.ndarray, delta_e: float = MERGE_DELTA_E):
    """k-means splits one noisy colour into several; merge clusters closer than delta_e in CIELAB."""
    centres, counts = centres[counts > 0], counts[counts > 0]
    merged = True
    while merged and len(centres) > 1:
        merged = False
        lab = to_lab(np.clip(np.rint(centres), 0, 255).astype(np.uint8))
        dist = np.sqrt(((lab[:, None] - lab[None]) ** 2).sum(-1)) + np.eye(len(lab)) * 1e9
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        if dist[i, j] < delta_e:
            total = counts[i] + counts[j]
            centres[i] = (centres[i] * counts[i] + centres[j] * counts[j]) / total
            counts[i] = total
            centres, counts = np.delete(centres, j, 0), np.delete(counts, j)
            merged = True
    return centres, counts
