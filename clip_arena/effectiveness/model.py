"""Train, cross-validate, save and load the effectiveness regressor.

The pipeline: each CLIP embedding block reduced to a few principal components (fitted inside each
training fold, rows with a missing modality kept missing), the rest passed through, then
HistGradientBoostingRegressor, which takes missing values and categories as they are. Errors are
measured by grouped cross-validation (one group never in both train and test: the same image or
campaign seen in training would flatter the score) against a DummyRegressor (the training mean)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline

from clip_arena.core.errors import UserError
from clip_arena.core.version import __version__
from clip_arena.effectiveness.features import MODALITIES, modality

EMBEDDING_COMPONENTS = 8
MIN_ROWS = 20
FORMAT = "clip-arena-effectiveness/1"


class NanPCA(BaseEstimator, TransformerMixin):
    """PCA fitted on the complete rows; a row with a missing value comes out all missing."""

    def __init__(self, n_components: int = EMBEDDING_COMPONENTS):
        self.n_components = n_components

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        complete = X[~np.isnan(X).any(1)]
        k = max(1, min(self.n_components, len(complete) - 1, X.shape[1])) if len(complete) > 1 else 0
        self.pca_ = PCA(n_components=k, random_state=0).fit(complete) if k else None
        self.k_ = k
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        out = np.full((len(X), max(self.k_, 1)), np.nan)
        ok = ~np.isnan(X).any(1)
        if self.pca_ is not None and ok.any():
            out[ok] = self.pca_.transform(X[ok])
        return out

    def get_feature_names_out(self, input_features=None):
        return np.array([f"pc{i}" for i in range(max(self.k_, 1))], dtype=object)


class DropEmpty(BaseEstimator, TransformerMixin):
    """Leave out the columns with no value at all in the rows fitted on: a video feature in a fold
    without videos (HistGradientBoosting cannot bin a column that is all missing)."""

    def fit(self, X, y=None):
        self.keep_ = [c for c in X.columns if X[c].notna().any()]
        return self

    def transform(self, X):
        return X[self.keep_]


def make_pipeline(columns: list[str], seed: int = 0) -> Pipeline:
    blocks = [(m, NanPCA(), [c for c in columns if modality(c) == m]) for m in ("img", "txt")]
    blocks = [b for b in blocks if b[2]]
    reduce = ColumnTransformer(blocks, remainder="passthrough", verbose_feature_names_out=True)
    reduce.set_output(transform="pandas")
    model = HistGradientBoostingRegressor(categorical_features="from_dtype", max_iter=200,
                                          learning_rate=0.05, min_samples_leaf=10, random_state=seed)
    return Pipeline([("reduce", reduce), ("drop_empty", DropEmpty()), ("boost", model)])


@dataclass
class Scores:
    mae_mean: float
    mae_std: float
    r2_mean: float
    r2_std: float

    @classmethod
    def of(cls, maes: list[float], r2s: list[float]) -> "Scores":
        return cls(float(np.mean(maes)), float(np.std(maes)), float(np.mean(r2s)), float(np.std(r2s)))


@dataclass
class CVReport:
    target: str
    rows: int
    groups: int
    folds: int
    model: Scores
    dummy: Scores
    # MAE with one modality's features left out, for each modality the data has.
    ablation: dict[str, Scores] = field(default_factory=dict)

    @property
    def beats_dummy(self) -> bool:
        return self.model.mae_mean < self.dummy.mae_mean

    def as_dict(self) -> dict:
        out = asdict(self)
        out["beats_dummy"] = self.beats_dummy
        return out


def cross_validate(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, folds: int = 5,
                   seed: int = 0) -> tuple[Scores, Scores]:
    """(model, dummy) scores over grouped folds."""
    splitter = GroupKFold(n_splits=folds)
    pipeline = make_pipeline(list(X.columns), seed)
    res = {"model": ([], []), "dummy": ([], [])}
    for train, test in splitter.split(X, y, groups):
        for name, est in (("model", clone(pipeline)), ("dummy", DummyRegressor())):
            est.fit(X.iloc[train], y[train])
            pred = est.predict(X.iloc[test])
            res[name][0].append(mean_absolute_error(y[test], pred))
            res[name][1].append(r2_score(y[test], pred) if len(test) > 1 else float("nan"))
    return Scores.of(*res["model"]), Scores.of(*res["dummy"])


def evaluate(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, target: str, folds: int = 5,
             seed: int = 0) -> CVReport:
    y = np.asarray(y, dtype=np.float64)
    n_groups = len(np.unique(groups))
    if len(y) < MIN_ROWS:
        raise UserError(f"Only {len(y)} rows have a target value; at least {MIN_ROWS} are needed to train and "
                        f"cross-validate.")
    folds = min(folds, n_groups)
    if folds < 2:
        raise UserError("All rows fall in one group; cross-validation needs at least two groups.")
    model, dummy = cross_validate(X, y, groups, folds, seed)
    report = CVReport(target=target, rows=len(y), groups=n_groups, folds=folds, model=model, dummy=dummy)
    present = [m for m in MODALITIES if any(modality(c) == m for c in X.columns)]
    if len(present) > 1:
        for m in present:
            kept = [c for c in X.columns if modality(c) != m]
            report.ablation[m] = cross_validate(X[kept], y, groups, folds, seed)[0]
    return report


@dataclass
class TrainedModel:
    pipeline: Pipeline
    columns: list[str]
    schema: dict  # tabular columns: "numeric" or categories
    clip_model: str
    image_column: str | None
    text_column: str | None
    sections: tuple[str, ...]
    report: dict
    app_version: str = __version__
    format: str = FORMAT

    def predict_frame(self, X: pd.DataFrame) -> np.ndarray:
        """X from features.feature_frame (tabular columns already typed by the schema); the
        training columns are taken in order, and features absent here are missing."""
        return self.pipeline.predict(X.reindex(columns=self.columns))


def fit(X: pd.DataFrame, y: np.ndarray, seed: int = 0) -> Pipeline:
    return make_pipeline(list(X.columns), seed).fit(X, np.asarray(y, dtype=np.float64))


def save(model: TrainedModel, path: str | os.PathLike) -> Path:
    """A joblib file (pickle inside: load only files you trust) and a JSON sidecar with the report."""
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    joblib.dump(model, tmp)
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(model.report, indent=2) + "\n", encoding="utf-8")
    return path


def load(path: str | os.PathLike) -> TrainedModel:
    import joblib

    path = Path(path)
    if not path.is_file():
        raise UserError(f"No trained effectiveness model at {path}; train one with `clip-arena effectiveness train`.")
    try:
        model = joblib.load(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise UserError(f"{path} could not be read as a trained effectiveness model ({type(err).__name__}).") from err
    if getattr(model, "format", None) != FORMAT:
        raise UserError(f"{path} is not a clip-arena effectiveness model (format {FORMAT}).")
    return model
