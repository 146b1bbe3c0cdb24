"""`clip-arena effectiveness train`: a CSV of creatives -> features -> cross-validated report ->
the model fitted on all rows, saved."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clip_arena.analyzer.csv_io import sniff
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings
from clip_arena.effectiveness import model as em
from clip_arena.effectiveness.features import ANALYSIS_SECTIONS, creative_features, tabular_schema


@dataclass
class TrainOptions:
    target: str
    image_column: str | None = "image"
    text_column: str | None = "text"
    group_column: str | None = None  # default: the image, so one image is never on both sides
    brand_column: str | None = None  # each video's brand name, for its first-brand time on screen
    tabular: list[str] | None = None  # default: every other column
    model: str = "demo:finetuned"
    ocr: bool = False
    folds: int = 5
    seed: int = 0


def _check_columns(df: pd.DataFrame, opts: TrainOptions) -> None:
    for what, col in (("target", opts.target), ("image", opts.image_column), ("text", opts.text_column),
                      ("group", opts.group_column), ("brand", opts.brand_column), *(("tabular", c) for c in opts.tabular or [])):
        if col and col not in df.columns:
            raise UserError(f"There is no {what} column {col!r}; the columns are: {', '.join(df.columns)}.")


def read_creatives(path: str | os.PathLike, opts: TrainOptions) -> pd.DataFrame:
    delimiter, _ = sniff(path)  # as the Batch tab reads CSVs: UTF-8 with or without BOM, , ; tab or |
    try:
        df = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", dtype=str, keep_default_na=False,
                         na_values=[""])
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise UserError(f"{path} could not be read as a CSV: {err}.") from err
    df.columns = [c.strip() for c in df.columns]
    _check_columns(df, opts)
    target = pd.to_numeric(df[opts.target], errors="coerce")
    if target.notna().sum() == 0:
        raise UserError(f"The target column {opts.target!r} has no numbers.")
    return df[target.notna()].reset_index(drop=True)


def train(csv_path: str | os.PathLike, output: str | os.PathLike, opts: TrainOptions, settings: Settings,
          progress=None) -> em.TrainedModel:
    df = read_creatives(csv_path, opts)
    y = pd.to_numeric(df[opts.target]).to_numpy(dtype=np.float64)
    used = {opts.target, opts.image_column, opts.text_column, opts.group_column, opts.brand_column}
    tabular = opts.tabular if opts.tabular is not None else [c for c in df.columns if c not in used]
    if not opts.image_column and not opts.text_column and not tabular:
        raise UserError("Give at least one of an image column, a text column or tabular columns.")
    schema = tabular_schema(df, tabular)
    sections = ANALYSIS_SECTIONS + (("ocr",) if opts.ocr else ())
    roots = [str(Path(csv_path).resolve().parent)] + list(settings.image_roots or [])
    X, problems = creative_features(df, opts.image_column, opts.text_column, schema, opts.model, settings,
                                    sections, image_roots=roots, progress=progress, brand_column=opts.brand_column)
    group_source = opts.group_column or opts.image_column
    groups = (df[group_source].fillna("").astype(str).to_numpy() if group_source
              else np.arange(len(df)).astype(str))
    report = em.evaluate(X, y, groups, opts.target, opts.folds, opts.seed).as_dict()
    report.update(group_column=group_source, image_problems=problems, tabular=list(schema), features=X.shape[1])
    trained = em.TrainedModel(pipeline=em.fit(X, y, opts.seed), columns=list(X.columns), schema=schema,
                              clip_model=opts.model, image_column=opts.image_column,
                              text_column=opts.text_column, sections=sections, report=report)
    em.save(trained, output)
    return trained
