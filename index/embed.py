"""The embedding builder: images (a folder and/or a metadata CSV) -> catalog Parquet.

Images are decoded once, in DataLoader worker processes, through the shared safe loader, and
each method's transform is applied to the same decoded image. Rows are written to Parquet in
row groups as they come, so memory stays bounded whatever the catalog size. Re-running keeps the
vectors of the images already embedded, embeds only the new ones, and refreshes the metadata from
the run's CSV (index/refresh.py, worked out before any model loads).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, Dataset

from clip_arena.analyzer.images import load_image, read_source
from clip_arena.core.errors import ImageLoadError, UserError
from clip_arena.core.settings import FetchLimits
from clip_arena.index.catalog import (CAPTION, ID, SPLIT, SUFFIX, URI, CatalogError, catalog_meta, embedding_column,
                           numpy_to_fixed_list, read_catalog, with_meta)
from clip_arena.index.refresh import RowPlan, plan_rows
from clip_arena.index.split import SplitPlan
from clip_arena.models.device import on_cuda
from clip_arena.models.pixels import decode_mode
from clip_arena.models.spec import absolute_spec, resolve_saved_spec

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
ROW_GROUP = 8192


@dataclass
class ImageItem:
    image_id: str
    source: str  # what the loader reads: an absolute path or a URL
    caption: str | None = None
    extra: dict = field(default_factory=dict)  # split and metadata columns


def items_from_folder(folder: str | os.PathLike) -> list[ImageItem]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"Image folder {folder} does not exist.")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    return [ImageItem(p.relative_to(folder).as_posix(), str(p.resolve())) for p in paths]


def items_from_csv(csv_path: str | os.PathLike, images_dir: str | os.PathLike | None = None) -> list[ImageItem]:
    """image_uri (required), image_id, caption, split and any metadata columns. Relative paths
    are under --images when given, else under the CSV's folder."""
    csv_path = Path(csv_path)
    try:
        if csv_path.suffix.lower() == ".parquet":  # `prepare`'s catalog: read as the CSV would be, as text
            df = pd.read_parquet(csv_path)
            df = df.astype(object).where(df.notna(), "").astype(str)
        else:
            df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError) as err:
        raise UserError(f"Metadata CSV {csv_path} could not be read: {err}.") from err
    if URI not in df.columns:
        raise UserError(f"Metadata CSV {csv_path} needs an {URI!r} column; it has {', '.join(df.columns)}.")
    vector_like = [c for c in df.columns if str(c).endswith(SUFFIX)]
    if vector_like:  # said now, not by the catalog's check once every image is embedded
        raise UserError(f"Metadata CSV {csv_path} has a column {str(vector_like[0])[:80]!r}: names ending in "
                        f"{SUFFIX!r} are the catalog's vector columns; rename it.")
    base = Path(images_dir) if images_dir else csv_path.parent
    items, seen = [], set()
    for row, rec in enumerate(df.to_dict("records")):
        uri = rec.pop(URI).strip()
        if not uri:
            raise UserError(f"Metadata CSV {csv_path}, row {row + 2}: {URI} is empty.")
        image_id = rec.pop(ID, "").strip() or uri
        if image_id in seen:
            raise UserError(f"Metadata CSV {csv_path}, row {row + 2}: image_id {image_id!r} appears twice.")
        seen.add(image_id)
        source = uri if "://" in uri[:16] else str((base / uri).resolve())
        caption = rec.pop(CAPTION, None) or None
        items.append(ImageItem(image_id, source, caption, {k: (v or None) for k, v in rec.items()}))
    return items


def merge_items(folder_items: list[ImageItem], csv_items: list[ImageItem]) -> list[ImageItem]:
    """CSV rows describe images; folder images without a CSV row are added bare."""
    by_source = {it.source: it for it in csv_items}
    by_id = {it.image_id: it for it in csv_items}
    bare = [it for it in folder_items if it.source not in by_source]
    for it in bare:
        if it.image_id in by_id:  # said now, not as a duplicate row once every image is embedded
            raise UserError(f"image_id {it.image_id!r} of the metadata CSV names {by_id[it.image_id].source}, but it "
                            f"is also the id of the folder's file {it.source}; give the CSV row another image_id.")
    return csv_items + bare


@dataclass
class Decoding:
    """How images become each method's model input, the same for every engine.

    "cpu": workers decode (JPEGs reduced in the DCT), resize and crop to uint8; the device scales
    and normalises. "gpu": workers read files and send JPEGs as bytes; the device decodes them
    (models.device_decode), the rest go the "cpu" way. "float": a model whose preprocessing is not
    the CLIP recipe keeps its own transform in the workers (the old path, and still correct).
    Methods with the same preprocessing share one decode and one resize."""

    mode: str
    transforms: list  # distinct transforms (models.pixels.Preprocess, or a model's own transform)
    slots: dict[str, int]  # method -> its transform's index
    limits: FetchLimits

    @classmethod
    def plan(cls, encoders: dict, decode: str = "auto", limits: FetchLimits | None = None) -> "Decoding":
        # "float": the old path, kept for benchmarks and for models outside the CLIP recipe
        mode = "float" if decode == "float" else decode_mode(decode, all(on_cuda(e.device) for e in encoders.values()))
        fast = mode != "float" and all(e.preprocess is not None for e in encoders.values())
        mode = mode if fast else "float"
        transforms, slots = [], {}
        for method, encoder in encoders.items():
            transform = encoder.fast_transform if fast else encoder.image_transform
            if transform not in transforms:
                transforms.append(transform)
            slots[method] = transforms.index(transform)
        return cls(mode, transforms, slots, limits or FetchLimits())

    def dataset(self, sources: list[str]) -> "_DecodeDataset":
        return _DecodeDataset(sources, self)

    def collate(self, batch: list) -> tuple:
        return _collate(batch, gpu=self.mode == "gpu")

    def encode(self, batch: tuple, encoders: dict) -> tuple[list[int], dict, list]:
        """A collated batch -> (indices, {method: vectors}, errors), on the encoders' device."""
        indices, columns, errors = batch
        if self.mode == "gpu" and indices:
            from clip_arena.models.device_decode import decode_batch

            device = next(iter(encoders.values())).device
            kept, columns, failed = decode_batch(columns, self.transforms, device, self.limits)
            errors = errors + [(indices[k], (err.kind, str(err))) for k, err in failed]
            indices = [indices[k] for k in kept]
        if not indices:
            return [], {}, errors
        vectors = {m: (encoders[m].encode_raw(columns[slot]) if self.mode == "gpu"
                       else encoders[m].encode_pixels(columns[slot])) for m, slot in self.slots.items()}
        return indices, vectors, sorted(errors)


class _DecodeDataset(Dataset):
    def __init__(self, sources: list[str], decoding: Decoding):
        self.sources, self.decoding = sources, decoding

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int):
        d = self.decoding
        try:
            if d.mode == "gpu":
                from clip_arena.models.device_decode import prepare

                data, name = read_source(self.sources[i], d.limits)
                return i, prepare(data, name, d.limits, d.transforms), None
            target = min(t.size for t in d.transforms) if d.mode == "cpu" else None
            return i, load_image(self.sources[i], d.limits, target_size=target,
                                 then=lambda image: [t(image) for t in d.transforms]), None
        except ImageLoadError as err:
            return i, None, (err.kind, str(err))


def _collate(batch, gpu: bool = False):
    """(indices, per-transform stacked tensors, errors); for the "gpu" decode, the workers' outputs
    as they are (JPEG bytes or CPU-decoded tensors), for Decoding.encode to decode on the device."""
    ok = [b for b in batch if b[1] is not None]
    errors = [(b[0], b[2]) for b in batch if b[1] is None]
    if gpu:
        return [b[0] for b in ok], [b[1] for b in ok], errors
    tensors = [torch.stack([b[1][t] for b in ok]) for t in range(len(ok[0][1]))] if ok else []
    return [b[0] for b in ok], tensors, errors


def _worker_init(_):
    torch.set_num_threads(1)  # decoding workers: one thread each, no oversubscription


def encode_stream(items: list[ImageItem], encoders: dict, batch_size: int = 64, workers: int = 2,
                  limits: FetchLimits | None = None, progress: bool = True, decode: str = "auto") -> Iterable[tuple]:
    """Yield (item indices, {method: vectors}, errors) per batch, in input order."""
    decoding = Decoding.plan(encoders, decode, limits)
    cuda = any(on_cuda(e.device) for e in encoders.values())
    loader = DataLoader(decoding.dataset([it.source for it in items]), batch_size=batch_size, num_workers=workers,
                        collate_fn=decoding.collate, pin_memory=cuda, worker_init_fn=_worker_init if workers else None,
                        # "gpu" batches are files' bytes (up to the size cap each), not S x S pixels
                        prefetch_factor=(2 if decoding.mode == "gpu" else 4) if workers else None,
                        persistent_workers=False)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), unit="img", desc=f"embedding ({decoding.mode} decode)", dynamic_ncols=True)
    try:
        for batch in loader:
            indices, vectors, errors = decoding.encode(batch, encoders)
            if bar:
                bar.update(len(indices) + len(errors))
            yield indices, vectors, errors
    finally:
        if bar:
            bar.close()


@dataclass
class EmbedReport:
    path: Path
    kept: int
    added: int
    failed: list[tuple[str, str, str]]  # (image_id, kind, message)
    plan: RowPlan | None = None  # what was kept, re-embedded, refreshed, dropped (index/refresh.py)
    splits: dict[str, int] = field(default_factory=dict)  # rows per split in the written catalog


@dataclass(frozen=True)
class StoredMethod:
    """A method as the catalog records it: stands in for its encoder when no image needs embedding."""

    spec: str
    dim: int


def _batch_table(items: list[ImageItem], uris: list[str], vectors: dict, extra_cols: list[str],
                 dtype: str) -> pa.Table:
    cols = {ID: pa.array([it.image_id for it in items], pa.string()),
            URI: pa.array(uris, pa.string()),
            CAPTION: pa.array([it.caption for it in items], pa.string())}
    for name in extra_cols:
        cols[name] = pa.array([it.extra.get(name) for it in items], pa.string())
    for method, vecs in vectors.items():
        cols[embedding_column(method)] = numpy_to_fixed_list(vecs, dtype)
    return pa.table(cols)


def _stored_uri(source: str, catalog_dir: Path) -> str:
    if "://" in source[:16]:
        return source
    try:
        return Path(os.path.relpath(source, catalog_dir)).as_posix()
    except ValueError:  # another drive on Windows
        return source


def plan_catalog(items: list[ImageItem], output: str | os.PathLike, methods: list[str], *, refresh: bool = True,
                 prune: bool = False, split: SplitPlan | None = None) -> RowPlan:
    """What embedding `items` into `output` will keep, embed and refresh, and the split it will draw;
    raises UserError for anything wrong with the inputs. Needs no model: run it before loading one."""
    output = Path(output)
    old = None
    if output.exists():
        old = read_catalog(output)
        if sorted(old.methods) != sorted(methods):
            raise CatalogError(f"{output} has methods {', '.join(old.methods)}; embedding into it needs the same "
                               f"methods, not {', '.join(methods)} (write a new file with -o).")
    catalog_dir = output.parent.resolve()
    return plan_rows(items, [_stored_uri(it.source, catalog_dir) for it in items], old, refresh=refresh,
                     prune=prune, split=split)


def stored_methods(output: str | os.PathLike, specs: dict[str, str]) -> dict[str, StoredMethod] | None:
    """The catalog's own record of `specs` when it made every method with the very same spec; else None
    (the models must then load: their spec is compared once loaded)."""
    from clip_arena.models.spec import parse_spec

    meta = read_catalog(output, check=False).meta.get("methods", {})
    found = {}
    for method, spec in specs.items():
        stored = meta.get(method, {})
        if not stored.get("spec") or stored.get("dim") is None or stored["spec"] != str(parse_spec(spec)):
            return None
        found[method] = StoredMethod(stored["spec"], int(stored["dim"]))
    return found


def build_catalog(items: list[ImageItem], encoders: dict, output: str | os.PathLike, *, dtype: str = "float32",
                  batch_size: int = 64, workers: int = 2, limits: FetchLimits | None = None,
                  progress: bool = True, encode: Callable | None = None, decode: str = "auto",
                  plan: RowPlan | None = None, refresh: bool = True, prune: bool = False,
                  split: SplitPlan | None = None) -> EmbedReport:
    """Embed `items` with every encoder and write the catalog; incremental if `output` exists (see
    index/refresh.py: vectors kept, metadata refreshed from `items` unless not `refresh`).
    `plan`: from plan_catalog, when it was made before the models loaded (then `refresh`, `prune`
    and `split` are in it). `encode(new_items)` replaces the local `encode_stream` (another engine
    yielding the same (indices, {method: vectors}, errors) batches, in input order)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if plan is None:
        plan = plan_catalog(items, output, list(encoders), refresh=refresh, prune=prune, split=split)
    specs = {m: absolute_spec(e.spec) for m, e in encoders.items()}  # loadable from any folder
    previous = {}
    if output.exists():
        previous = read_catalog(output, check=False).meta
        for method, spec in specs.items():
            old_spec = previous.get("methods", {}).get(method, {}).get("spec")
            if old_spec and not _same_model(old_spec, spec, output.parent):
                raise CatalogError(f"{output} method {method!r} was made with {old_spec}, not {spec}.")
    new_items = plan.new_items
    dims = {m: e.dim for m, e in encoders.items()}
    meta = catalog_meta(specs, dims, previous) if new_items or not previous else previous
    vector_fields = [pa.field(embedding_column(m), numpy_to_fixed_list(np.zeros((0, d), np.float32), dtype).type)
                     for m, d in dims.items()]
    schema = with_meta(pa.schema(list(plan.kept_meta.schema) + vector_fields).empty_table(), meta).schema
    tmp = output.with_name(output.name + ".tmp")
    failed: list[tuple[str, str, str]] = []
    added = kept = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        if plan.kept:
            old = pq.read_table(output, columns=[f.name for f in vector_fields], memory_map=True)
            for start in range(0, len(plan.kept), ROW_GROUP):
                rows = plan.kept[start : start + ROW_GROUP]
                vectors = old.take(pa.array(rows, pa.int64()))
                columns = plan.kept_meta.slice(start, len(rows)).columns + \
                    [vectors.column(f.name).cast(f.type) for f in vector_fields]
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
                kept += len(rows)
            del old
        buffer: list[pa.Table] = []
        buffered = 0
        stream = () if not new_items else (
            encode(new_items) if encode is not None
            else encode_stream(new_items, encoders, batch_size, workers, limits, progress, decode))
        for indices, vectors, errors in stream:
            failed += [(new_items[i].image_id, kind, msg) for i, (kind, msg) in errors]
            if not indices:
                continue
            batch_items = [new_items[i] for i in indices]
            uris = [_stored_uri(it.source, output.parent.resolve()) for it in batch_items]
            buffer.append(_conform(_batch_table(batch_items, uris, vectors, plan.columns, dtype), schema))
            buffered += len(indices)
            if buffered >= ROW_GROUP:
                writer.write_table(pa.concat_tables(buffer))
                added += buffered
                buffer, buffered = [], 0
        if buffer:
            writer.write_table(pa.concat_tables(buffer))
            added += buffered
    if kept + added == 0:
        tmp.unlink()
        raise UserError("No image could be embedded: " + (failed[0][2] if failed else "no images were found."))
    written = read_catalog(tmp)  # validate what was written before it replaces anything
    splits = dict(Counter(v for v in written.table.column(SPLIT).to_pylist() if v)) if SPLIT in written.table.column_names else {}
    del written
    os.replace(tmp, output)
    return EmbedReport(output, kept, added, failed, plan, splits)


def _same_model(saved: str, spec: str, folder: Path) -> bool:
    """Whether a catalog's saved spec (relative paths in older catalogs) names the model `spec` does."""
    try:
        return absolute_spec(resolve_saved_spec(saved, folder)) == spec
    except UserError:  # not understood, or its files are gone: only the same text is the same model
        return saved == spec


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Old rows into the new schema: columns the new run adds are null for them."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)

