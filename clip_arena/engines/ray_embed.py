"""`clip-arena embed --engine ray`: the embedding builder of index/embed.py on Ray Data.

The catalog is written by the local `build_catalog` (schema, file metadata, stored URIs, kept rows
of an existing catalog, skipped images); only its encoding stream comes from Ray. The new images are
cut into parts of `part_rows`; CPU tasks decode a part with the local decoder (index.embed.Decoding:
the shared safe loader, uint8 pixels, or JPEG bytes for actors that decode on their GPU) into the
same batches the local DataLoader makes; actors, each holding every method's model once, encode them. A finished part is saved at once
(`catalog.parquet.parts/`, NumPy files) and fed to the writer in input order; a killed job re-run
with the same arguments reuses every saved part, and the folder goes when the catalog is written.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import numpy as np

from clip_arena.core.settings import FetchLimits
from clip_arena.engines.parts import PartStore, fingerprint
from clip_arena.engines.ray_runtime import RayOptions, actor_class, actors_on_cuda, ray_session, run_parts
from clip_arena.index.embed import Decoding, EmbedReport, ImageItem, build_catalog
from clip_arena.models.pixels import decode_mode


def build_catalog_ray(items: list[ImageItem], specs: dict[str, str], output: str | os.PathLike,
                      ray_options: RayOptions, *, dtype: str = "float32", batch_size: int = 64,
                      limits: FetchLimits | None = None, device: str | None = None, precision: str | None = None,
                      progress: bool = True, decode: str = "auto", plan=None) -> EmbedReport:
    """What `build_catalog` does, with the images encoded on Ray (`plan`: index.embed.plan_catalog's)."""
    from clip_arena.models import get_encoder

    limits = limits or FetchLimits()
    # The driver's copies give each method's spec, dimension and image preprocessing.
    local = {m: get_encoder(spec, "cpu", "fp32") for m, spec in specs.items()}
    store = PartStore.beside(output, ".npz")
    methods = list(specs)
    # The actors' device decides "auto": nvJPEG when they have a GPU (the driver may have none).
    decoding = Decoding.plan(local, decode_mode(decode, actors_on_cuda(ray_options, device)), limits)
    config = fingerprint(specs, precision, batch_size, limits, decoding.mode)

    def decode_part(payload: bytes) -> bytes:  # a CPU task: one part's images, in local-engine batches
        sources = pickle.loads(payload)
        dataset = decoding.dataset(sources)
        return pickle.dumps([decoding.collate([dataset[i] for i in range(s, min(s + batch_size, len(sources)))])
                             for s in range(0, len(sources), batch_size)], protocol=5)

    def make_encoder():  # once per actor: every method's model
        encoders = {m: get_encoder(spec, device, precision) for m, spec in specs.items()}

        def encode(payload: bytes) -> bytes:
            out = []
            for batch in pickle.loads(payload):
                out.append(decoding.encode(batch, encoders))
            return _part_bytes(out, methods, {m: e.dim for m, e in encoders.items()})

        return encode

    def stream(new_items: list[ImageItem]):
        parts = [new_items[s : s + ray_options.part_rows] for s in range(0, len(new_items), ray_options.part_rows)]
        keys = [fingerprint(config, [(it.image_id, it.source) for it in part]) for part in parts]
        bar = _bar(len(new_items), progress)
        ready: set[int] = set()
        next_part = 0

        def flush():  # parts in input order, as soon as the next one is on disk
            nonlocal next_part
            while next_part in ready:
                offset = next_part * ray_options.part_rows
                indices, vectors, errors = _read_part(store.path(next_part, keys[next_part]), methods)
                if bar:
                    bar.update(len(parts[next_part]))
                yield [offset + i for i in indices], vectors, [(offset + i, e) for i, e in errors]
                next_part += 1

        todo = []
        for index, key in enumerate(keys):
            if store.done(index, key):
                ready.add(index)
            else:
                todo.append((index, pickle.dumps([it.source for it in parts[index]], protocol=5)))
        try:
            yield from flush()
            if todo:
                with ray_session(ray_options):
                    for index, payload in run_parts(todo, decode_part, actor_class("EmbedParts", make_encoder),
                                                    ray_options):
                        store.write(index, keys[index], payload)
                        ready.add(index)
                        yield from flush()
            yield from flush()
        finally:
            if bar:
                bar.close()

    report = build_catalog(items, local, output, dtype=dtype, batch_size=batch_size, limits=limits,
                           progress=progress, encode=stream, plan=plan)
    store.remove()
    return report


def _part_bytes(batches: list[tuple], methods: list[str], dims: dict[str, int]) -> bytes:
    """One part as an .npz (no pickle on disk): the good images' indices within the part, each
    method's vectors for them, and the failed ones' (index, kind, message)."""
    indices = [i for b in batches for i in b[0]]
    arrays = {"indices": np.asarray(indices, np.int64),
              "errors": np.asarray(json.dumps([[i, kind, msg] for b in batches for i, (kind, msg) in b[2]]))}
    for m in methods:
        arrays[f"vectors_{m}"] = np.concatenate([np.zeros((0, dims[m]), np.float32)]
                                                + [b[1][m] for b in batches if b[0]])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _read_part(path: Path, methods: list[str]):
    with np.load(path, allow_pickle=False) as part:
        indices = part["indices"].tolist()
        vectors = {m: part[f"vectors_{m}"] for m in methods} if indices else {}
        errors = [(i, (kind, msg)) for i, kind, msg in json.loads(str(part["errors"]))]
    return indices, vectors, errors


def _bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="embedding", dynamic_ncols=True)
