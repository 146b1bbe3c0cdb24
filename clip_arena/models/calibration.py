"""Calibrated scores: what a model's raw cosine means, learnt from matched and mismatched pairs.

Raw CLIP cosines differ between models (0.2 is a good match for one, noise for another). From a CSV of
image-caption pairs marked matched (1) or mismatched (0) a Calibration learns, for one model:
  - the probability of a match given the cosine: isotonic regression (a monotone step function, no
    shape assumed) or Platt scaling (a logistic curve on the cosine, two numbers, smoother with few pairs);
  - the percentile of a cosine among the mismatched pairs' cosines (how unusual it is for a non-match);
  - a reliability curve and the expected calibration error of held-out predictions: each pair is
    predicted by a fit on the other folds (5-fold), so the curve is not the fit grading itself.
It is saved as JSON and tied to the model's weights (model_fingerprint): loading it for another
model is refused, since the numbers would silently mean something else.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import threading
import weakref
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np

from clip_arena.core.errors import ImageLoadError, UserError

METHODS = ("isotonic", "platt")
FORMAT = "clip-arena-calibration"
VERSION = 1
MIN_PER_CLASS = 10  # fewer matched or mismatched pairs than this cannot say much about either
FOLDS = 5
BINS = 10
MAX_FILE_BYTES = 16 << 20  # a calibration is tens of KB; more is not one
QUANTILE_LEVELS = np.linspace(0.0, 100.0, 201)  # the mismatched cosines kept for percentiles, every 0.5%
IMAGE_HEADERS = ("image", "image_path", "image_url", "url", "path", "file", "filename")
CAPTION_HEADERS = ("caption", "text", "title", "description", "prompt")
MATCH_HEADERS = ("match", "label", "matched", "is_match", "y")
TRUE_WORDS = {"1", "1.0", "true", "yes", "y", "match", "matched", "t"}
FALSE_WORDS = {"0", "0.0", "false", "no", "n", "mismatch", "mismatched", "f"}


# --- the model's fingerprint --------------------------------------------------------------------------

_FINGERPRINTS: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()
_FINGERPRINT_LOCK = threading.Lock()


def _module(encoder):
    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "state_dict"):
        raise UserError(f"The model {getattr(encoder, 'spec', encoder)!r} exposes no weights to fingerprint.")
    return model


def model_fingerprint(encoder) -> str:
    """sha256 of the model's weights (names, shapes and bytes, in state_dict order), cached per encoder.
    Floating tensors are hashed as float16, so the same weights loaded in fp32 on a CPU and fp16 on a
    GPU share one fingerprint (a calibration made on a laptop serves on the GPU box)."""
    known = _cached(encoder)
    if known is not None:  # every scoring request asks: no lock on this path
        return known
    with _FINGERPRINT_LOCK:  # two first asks (a swap's check and a request) hash the weights once
        return _cached(encoder) or _fingerprint(encoder)


def _cached(encoder) -> str | None:
    try:
        return _FINGERPRINTS.get(encoder)
    except TypeError:  # not weak-referenceable
        return None


def _fingerprint(encoder) -> str:
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in _module(encoder).state_dict().items():
            t = tensor.detach()
            if t.is_floating_point():
                t = t.to(torch.float16)
            t = t.contiguous().cpu()
            digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
            # reshape: a 0-d tensor (open_clip's logit_scale) cannot be viewed as bytes
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    value = digest.hexdigest()
    try:
        _FINGERPRINTS[encoder] = value
    except TypeError:  # not weak-referenceable: hashed again next time
        pass
    return value


# --- the pairs file -------------------------------------------------------------------------------------

def _column(header: list[str], names: tuple[str, ...], what: str, path: Path) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise UserError(f"{path.name} has no {what} column (looked for {', '.join(names)}); its columns are: "
                    f"{', '.join(repr(h) for h in header[:20])}.")


def _match_value(cell: str, line: int, path: Path) -> int:
    word = cell.strip().lower()
    if word in TRUE_WORDS:
        return 1
    if word in FALSE_WORDS:
        return 0
    raise UserError(f"Line {line} of {path.name}: the match cell {cell[:40]!r} is not 1 or 0 (or true/false).")


def _resolve(image: str, folder: Path) -> str:
    from clip_arena.analyzer.fetch import is_url

    if is_url(image) or os.path.isabs(os.path.expanduser(image)):
        return image
    return str(folder / image)


def read_pairs(path: str | os.PathLike):
    """The pairs CSV as a DataFrame: image (URLs and absolute paths as given, relative paths resolved
    against the CSV's folder), caption, match (0/1). Header names are matched case-insensitively
    (image/image_path/url, caption/text, match/label/matched); any problem is one UserError sentence."""
    import pandas as pd

    from clip_arena.analyzer.csv_io import sniff

    path = Path(path)
    delimiter, _ = sniff(path)  # UTF-8, not empty, the delimiter
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            records = list(csv.reader(io.StringIO(f.read().replace("\x00", "")), delimiter=delimiter))
    except (csv.Error, UnicodeDecodeError, OSError) as err:
        raise UserError(f"{path.name} could not be read as CSV ({type(err).__name__}).") from err
    records = [r for r in records if any(cell.strip() for cell in r)]
    if not records:
        raise UserError(f"{path.name} is empty.")
    header, rows = records[0], records[1:]
    columns = [_column(header, IMAGE_HEADERS, "image", path), _column(header, CAPTION_HEADERS, "caption", path),
               _column(header, MATCH_HEADERS, "match", path)]
    out = []
    for line, row in enumerate(rows, start=2):
        if len(row) <= max(columns):
            raise UserError(f"Line {line} of {path.name} has {len(row)} cells; the header has {len(header)}.")
        image, caption, match = (row[i] for i in columns)
        if not image.strip() or not caption.strip():
            raise UserError(f"Line {line} of {path.name} has an empty image or caption cell.")
        out.append((_resolve(image.strip(), path.parent), caption.strip(), _match_value(match, line, path)))
    if not out:
        raise UserError(f"{path.name} has a header but no pairs.")
    return pd.DataFrame(out, columns=["image", "caption", "match"]).astype({"match": int})


# --- reliability --------------------------------------------------------------------------------------

def reliability(probabilities, labels, bins: int = BINS) -> tuple[list[dict], float]:
    """(the non-empty equal-width bins of predicted probability, each with lo, hi, mean_predicted,
    observed (share of matches) and count; the expected calibration error, the count-weighted mean
    gap between predicted and observed)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    y = np.asarray(labels, dtype=np.float64)
    if p.shape != y.shape or not len(p):
        raise ValueError("reliability needs as many labels as probabilities, at least one")
    which = np.minimum((p * bins).astype(int), bins - 1)
    out, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        if not n:
            continue
        mean_p, observed = float(p[inside].mean()), float(y[inside].mean())
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "mean_predicted": mean_p, "observed": observed, "count": n})
        ece += n / len(p) * abs(mean_p - observed)
    return out, float(ece)


# --- fits -------------------------------------------------------------------------------------------------

def _fit(method: str, cos: np.ndarray, y: np.ndarray) -> dict:
    """The fitted curve's parameters (JSON-ready)."""
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    with threadpool_limits(1):  # a one-feature fit: BLAS threads only add start-up time (8x on a busy machine)
        return _fit_one(method, cos, y)


def _fit_one(method: str, cos: np.ndarray, y: np.ndarray) -> dict:
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(cos, y)
        return {"thresholds": iso.X_thresholds_.tolist(), "values": iso.y_thresholds_.tolist()}
    from sklearn.linear_model import LogisticRegression

    # Fitted on standardised cosines (they span a narrow range, so the slope in raw units is large), with
    # weak regularisation: it converges fast and stays finite when the pairs separate perfectly.
    mean, std = float(cos.mean()), float(cos.std()) or 1.0
    lr = LogisticRegression(C=100.0, max_iter=1000).fit(((cos - mean) / std).reshape(-1, 1), y)
    slope, intercept = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return {"a": slope / std, "b": intercept - slope * mean / std}


def _predict(method: str, params: dict, cos) -> np.ndarray:
    cos = np.asarray(cos, dtype=np.float64)
    if method == "isotonic":
        # What IsotonicRegression.predict computes (linear between thresholds, clipped outside).
        return np.interp(cos, params["thresholds"], params["values"])
    z = np.clip(params["a"] * cos + params["b"], -500, 500)
    return 1.0 / (1.0 + np.exp(-z))


def _cross_fitted(method: str, cos: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each pair's probability from a fit on the other folds: held-out predictions for the curve."""
    from sklearn.model_selection import StratifiedKFold

    out = np.empty(len(cos))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(cos, y):
        out[test] = _predict(method, _fit(method, cos[train], y[train]), cos[test])
    return out


# --- the calibration ----------------------------------------------------------------------------------

@dataclass
class Calibration:
    name: str
    spec: str
    fingerprint: str
    method: str
    n_matched: int
    n_mismatched: int
    ece: float  # of held-out (cross-fitted) predictions
    reliability: list[dict]
    params: dict  # isotonic: thresholds, values; platt: a, b
    mismatched_quantiles: list[float]  # the mismatched cosines at QUANTILE_LEVELS
    created_at: str = ""

    def probability(self, cos) -> np.ndarray:
        """The calibrated probability (0..1) that each cosine is a matched pair's."""
        return np.clip(_predict(self.method, self.params, cos), 0.0, 1.0)

    def percentile(self, cos) -> np.ndarray:
        """The share (0..100) of mismatched pairs whose cosine is below each cosine; monotone."""
        cos = np.asarray(cos, dtype=np.float64)
        xs, first = np.unique(np.asarray(self.mismatched_quantiles, dtype=np.float64), return_index=True)
        levels = np.asarray(QUANTILE_LEVELS if len(self.mismatched_quantiles) == len(QUANTILE_LEVELS)
                            else np.linspace(0, 100, len(self.mismatched_quantiles)))
        # a cosine tied by many mismatched pairs sits at the lowest level it reaches (not above them)
        ys = levels[first]
        if len(xs) == 1:
            return np.where(np.isnan(cos), np.nan, np.where(cos > xs[0], 100.0, 0.0))
        out = np.clip(np.interp(cos, xs, ys), 0.0, 100.0)
        return np.where(cos > xs[-1], 100.0, out)  # above every mismatched pair (interp stops at the last tie)

    def check(self, encoder) -> None:
        """Refuse a model whose weights are not the ones this calibration was made for."""
        other = model_fingerprint(encoder)
        if other != self.fingerprint:
            raise UserError(f"calibration {self.name} was made for model fingerprint {self.fingerprint[:12]}, "
                            f"this model is {other[:12]}; calibrate it again for this model.")

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON atomically (a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        from clip_arena.models.config import read_regular

        path = Path(path)
        raw = read_regular(path, MAX_FILE_BYTES, f"The calibration file {path}")  # a FIFO or /dev/zero: refused
        if len(raw) > MAX_FILE_BYTES:
            raise UserError(f"The calibration file {path} is larger than {MAX_FILE_BYTES >> 20} MiB, far more than "
                            "a calibration needs.")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            raise UserError(f"{path.name} is not a calibration file (not JSON).") from err
        return cls.from_json(data, path.name)

    @classmethod
    def from_json(cls, data, where: str = "the calibration") -> "Calibration":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{where} is not a clip-arena calibration file.")
        if data.get("version") != VERSION:
            raise UserError(f"{where} is a calibration of version {data.get('version')!r}; this app reads {VERSION}.")
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in data]
        if missing:
            raise UserError(f"{where} is a damaged calibration file: it lacks {', '.join(missing)}.")
        try:
            cal = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
            _validate(cal)
        except (TypeError, KeyError, ValueError) as err:
            raise UserError(f"{where} is a damaged calibration file ({err}).") from err
        return cal


def reliability_table(cal: Calibration) -> str:
    """The reliability curve as text, for a command's output: one line per bin."""
    lines = [f"{'predicted':>11}  {'mean':>6}  {'observed':>8}  {'pairs':>7}"]
    for b in cal.reliability:
        lines.append(f"{b['lo']:>5.0%}-{b['hi']:<5.0%}  {b['mean_predicted']:6.3f}  {b['observed']:8.3f}  {b['count']:7,}")
    lines.append(f"expected calibration error {cal.ece:.3f} (held-out, {FOLDS}-fold)")
    return "\n".join(lines)


def _validate(cal: Calibration) -> None:
    if cal.method not in METHODS:
        raise ValueError(f"method {cal.method!r}")
    if cal.method == "isotonic":
        xs, ys = (np.asarray(cal.params[k], dtype=np.float64) for k in ("thresholds", "values"))
        if len(xs) != len(ys) or not len(xs) or np.any(np.diff(xs) < 0) or np.any(np.diff(ys) < 0):
            raise ValueError("the isotonic steps are not increasing")
    else:
        if not all(math.isfinite(float(cal.params[k])) for k in ("a", "b")):
            raise ValueError("Platt a and b must be numbers")
    q = np.asarray(cal.mismatched_quantiles, dtype=np.float64)
    if q.ndim != 1 or not len(q) or not np.all(np.isfinite(q)) or np.any(np.diff(q) < 0):
        raise ValueError("the mismatched quantiles are not increasing numbers")


def pair_cosines(encoder, pairs, image_root=None, progress: Callable[[str], None] = print,
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(cosine, match) of the pairs whose image loads; each distinct image and caption encoded once.
    Images are read as a command's arguments are (any readable file, or only under `image_root`),
    fetched a batch at a time by a few threads and kept only as vectors (bounded memory)."""
    from concurrent.futures import ThreadPoolExecutor

    from clip_arena.analyzer.policy import CLI, ImagePolicy
    from clip_arena.core.settings import FetchLimits

    roots = (str(Path(image_root).expanduser().resolve()),) if image_root else None
    policy = ImagePolicy(roots, FetchLimits(), CLI, argument=True)

    def load(source):
        try:
            return policy.load(source), None
        except ImageLoadError as err:
            return None, f"{err.kind}: {err}"

    sources = list(dict.fromkeys(pairs["image"]))
    progress(f"encoding {len(sources):,} images")
    image_vecs, failed = {}, {}
    with ThreadPoolExecutor(8, thread_name_prefix="calibrate-fetch") as pool:
        for start in range(0, len(sources), batch_size):
            batch = sources[start : start + batch_size]
            loaded = list(pool.map(load, batch))
            failed.update({s: why for s, (_, why) in zip(batch, loaded) if why})
            good = [(s, image) for s, (image, _) in zip(batch, loaded) if image is not None]
            if good:
                image_vecs.update(zip([s for s, _ in good], encoder.encode_images([im for _, im in good])))
    if failed:
        source, why = next(iter(failed.items()))
        progress(f"{len(failed):,} image(s) could not be read and their pairs are left out (first: {source}: {why})")
    kept = pairs[pairs["image"].isin(image_vecs.keys()).to_numpy()]
    captions = list(dict.fromkeys(kept["caption"]))
    text_vecs = dict(zip(captions, encoder.encode_texts(captions))) if captions else {}
    cos = np.array([float(image_vecs[i] @ text_vecs[c]) for i, c in zip(kept["image"], kept["caption"])])
    return cos, kept["match"].to_numpy(dtype=int)


def fit_calibration(cos, match, *, method: str = "isotonic", name: str, spec: str, fingerprint: str) -> Calibration:
    """The Calibration of these (cosine, match) pairs; UserError when there are too few of either kind."""
    if method not in METHODS:
        raise UserError(f"Unknown calibration method {method!r}; choose isotonic or platt.")
    cos, y = np.asarray(cos, dtype=np.float64), np.asarray(match, dtype=int)
    ok = np.isfinite(cos)
    cos, y = cos[ok], y[ok]
    n_matched, n_mismatched = int((y == 1).sum()), int((y == 0).sum())
    if min(n_matched, n_mismatched) < MIN_PER_CLASS:
        raise UserError(f"Calibration needs at least {MIN_PER_CLASS} matched and {MIN_PER_CLASS} mismatched pairs "
                        f"that load; these pairs give {n_matched} matched and {n_mismatched} mismatched.")
    matched_mean, mismatched_mean = cos[y == 1].mean(), cos[y == 0].mean()
    params = _fit(method, cos, y)
    if matched_mean <= mismatched_mean or (method == "platt" and params["a"] <= 0):
        raise UserError(f"The matched pairs do not score higher than the mismatched ones (mean cosine "
                        f"{matched_mean:.4f} against {mismatched_mean:.4f}): the match column may be inverted, "
                        "or this model cannot tell them apart.")
    bins, ece = reliability(_cross_fitted(method, cos, y), y)
    from datetime import datetime, timezone

    return Calibration(
        name=name, spec=spec, fingerprint=fingerprint, method=method, n_matched=n_matched,
        n_mismatched=n_mismatched, ece=ece, reliability=bins, params=params,
        # to 1e-7 (a float32 cosine's precision): no subnormal gaps between steps for interp to divide by
        mismatched_quantiles=np.round(np.percentile(cos[y == 0], QUANTILE_LEVELS), 7).tolist(),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def calibrate(encoder, pairs, *, method: str = "isotonic", name: str, spec: str, image_root=None,
              progress: Callable[[str], None] = print) -> Calibration:
    """Encode the pairs with `encoder` and fit its Calibration (see the module's docstring)."""
    if method not in METHODS:
        raise UserError(f"Unknown calibration method {method!r}; choose isotonic or platt.")
    cos, match = pair_cosines(encoder, pairs, image_root, progress)
    cal = fit_calibration(cos, match, method=method, name=name, spec=spec, fingerprint=model_fingerprint(encoder))
    progress(f"{name}: {method} on {cal.n_matched:,} matched and {cal.n_mismatched:,} mismatched pairs, "
             f"expected calibration error {cal.ece:.3f} (held-out, {FOLDS}-fold)")
    return cal
