"""`clip-arena prepare`'s stages in order, each resumable: clean -> attributes -> split -> shards.

Every stage works in OUT/.prepare/<stage>-<fingerprint>/, where the fingerprint covers the input file,
the options the stage depends on and the fingerprint of the stage before it: changed input or options
give a new folder, so a resumed run never mixes old and new work. Inside, the rows are done in parts
(each part's output written atomically, to a temporary name then renamed), then the stage's result and
its `done.json` marker. `--resume` keeps every finished part and stage whose fingerprint matches; a
killed run resumed redoes only the parts it had not finished. Shards are done split by split.

Outputs: OUT/catalog.parquet (after split: one row per usable input row), OUT/report.json (rows
left out and why, duplicate images), OUT/shards/<split>/shard-NNNNNN.tar and OUT/manifest.json."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from clip_arena.core.errors import UserError
from clip_arena.core.settings import DEFAULT_MODEL, FetchLimits
from clip_arena.index.catalog import SPLITS
from clip_arena.prepare import attributes as attrs
from clip_arena.prepare import raw, shards, split as splitting, stages
from clip_arena.prepare.clean import duplicate_groups

STAGES = ("clean", "attributes", "split", "shards")
VERSION = 2  # bump when a stage's output changes meaning: old work folders are then not reused
FALLBACK_IMAGE_SIZE = 224


@dataclass
class Options:
    csv: Path
    out: Path
    columns: dict[str, str | None] = field(default_factory=dict)  # role -> column name given
    image_roots: list[str] | None = None
    vocabulary: str | None = None
    tier: str = "offline"
    model: str = DEFAULT_MODEL
    device: str | None = None
    precision: str | None = None
    min_confidence: float = attrs.DEFAULT_MIN_CONFIDENCE
    split: str = "80/10/10"
    seed: int = 0
    mini_train: int = splitting.MINI_TRAIN_ROWS
    resplit: bool = False  # draw every row again, ignoring the splits of an earlier catalog in OUT
    shard_count: int = shards.DEFAULT_MAX_COUNT
    shard_size: int = shards.DEFAULT_MAX_SIZE
    template: str = shards.DEFAULT_TEMPLATE
    image_size: int | None = None
    resume: bool = False
    part_rows: int = 256
    duplicate_distance: int = 4
    limits: FetchLimits = field(default_factory=FetchLimits)
    vlm_model: str = "gpt-4o-mini"
    vlm_base_url: str | None = None
    engine: object = None  # None: this process; else a RayEngine (clip_arena.prepare.ray_engine)


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8"))


def atomic_parquet(path: Path, df: pd.DataFrame) -> None:
    """The frame as Parquet, text as `string` (pandas 3 writes large_string, which the catalog's
    schema, and so `finetune --catalog`, refuses)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = pa.Table.from_pandas(df, preserve_index=False)
    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema],
                       metadata=table.schema.metadata)
    pq.write_table(table.cast(schema), tmp)
    os.replace(tmp, path)


class LocalEngine:
    """Parts done one after another in this process. `fn(records)` does a part; or `make()` builds, once
    and only when a part is left to do, the function that does (a model's load)."""

    name = "local"

    def map_parts(self, parts: list[tuple[int, list[dict]]], fn: Callable | None = None,
                  make: Callable | None = None) -> Iterator:
        for number, records in parts:
            if fn is None:
                fn = make()
            yield number, fn(records)

    def close(self) -> None:
        pass


class Prepare:
    def __init__(self, opts: Options, progress: Callable[[str, int, int], None] | None = None):
        self.o = opts
        self.out = Path(opts.out)
        self.work = self.out / ".prepare"
        self.progress = progress or _print_progress
        self.engine = opts.engine or LocalEngine()
        self.done: dict[str, str] = {}  # stage -> "done" | "resumed"
        self.vocab = attrs.load_vocabulary(opts.vocabulary)
        shards.check_limits(opts.shard_count, opts.shard_size)
        splitting.parse_shares(opts.split)
        if opts.part_rows < 1:
            raise UserError(f"--part-rows {opts.part_rows} must be at least 1.")
        self.df = raw.read_raw(Path(opts.csv))
        self.columns = raw.find_columns([str(c) for c in self.df.columns], opts.columns)
        self.records = raw.records(self.df, self.columns)
        if not self.records:
            raise UserError(f"The raw catalog {opts.csv} has a header but no rows.")
        roots = opts.image_roots or [str(Path(opts.csv).resolve().parent)]
        self.ctx = stages.Context(tuple(str(Path(r).expanduser().resolve()) for r in roots),
                                  str((self.out / "images").resolve()), opts.limits)
        catalog_columns = set(self.records[0]) | set(raw.PRODUCED) | set(attrs.attribute_columns(self.vocab))
        shards.check_template(opts.template, catalog_columns - {"row", "error", "error_kind"})
        self.fp = {"input": fingerprint(VERSION, shards.sha256_file(Path(opts.csv)), asdict(self.columns), self.ctx.roots,
                                        opts.limits.max_bytes, opts.limits.max_pixels)}
        self.fp["clean"] = fingerprint(self.fp["input"], opts.part_rows, opts.duplicate_distance)
        self.fp["attributes"] = fingerprint(self.fp["clean"], opts.tier, opts.model if opts.tier == "offline" else
                                            opts.vlm_model, self.vocab, opts.min_confidence, opts.part_rows)
        # The caption template is the shards' option (the catalog's captions are refreshed with them):
        # a new template rewrites the shards, not the split.
        self.fp["split"] = fingerprint(self.fp["attributes"], opts.split, opts.seed, opts.mini_train, opts.resplit)
        self.fp["shards"] = fingerprint(self.fp["split"], opts.shard_count, opts.shard_size, opts.image_size,
                                        opts.template, shards.ORDER)

    # -- bookkeeping ----------------------------------------------------------------------------------
    def folder(self, stage: str) -> Path:
        return self.work / f"{stage}-{self.fp[stage]}"

    def finished(self, stage: str) -> dict | None:
        marker = self.folder(stage) / "done.json"
        try:
            return json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _start(self, stage: str) -> Path:
        """The stage's folder, other fingerprints' folders of it removed, and its own too unless resuming."""
        here = self.folder(stage)
        for old in self.work.glob(f"{stage}-*"):
            if old != here or not self.o.resume:
                shutil.rmtree(old, ignore_errors=True)
        here.mkdir(parents=True, exist_ok=True)
        return here

    def _need(self, stage: str) -> dict:
        info = self.finished(stage)
        if info is None:
            raise UserError(f"The {stage} stage has not finished for this input and these options in {self.out}; "
                            f"run it first (`--stage {stage}`), or run prepare without --stage.")
        return info

    def _parts(self, stage: str, records: list[dict], **engine_kw) -> list:
        """fn over the records in parts of part_rows, each part's rows saved as it finishes; finished
        parts (when resuming) are read back, not redone."""
        folder = self.folder(stage)
        size = self.o.part_rows
        count = math.ceil(len(records) / size)
        path = lambda n: folder / f"part-{n:06d}.json"  # noqa: E731
        todo = [(n, records[n * size:(n + 1) * size]) for n in range(count) if not path(n).is_file()]
        done_rows = (count - len(todo)) * size
        self.progress(stage, min(done_rows, len(records)), len(records))
        for number, rows in self.engine.map_parts(todo, **engine_kw):
            atomic_json(path(number), rows)
            done_rows += len(rows)
            self.progress(stage, min(done_rows, len(records)), len(records))
        out = []
        for n in range(count):
            out.extend(json.loads(path(n).read_text(encoding="utf-8")))
        return out

    # -- stages ---------------------------------------------------------------------------------------
    def run(self, only: list[str] | None = None) -> dict:
        chosen = only or list(STAGES)
        if only is None and not self.o.resume:
            shutil.rmtree(self.work, ignore_errors=True)
        for stage in chosen:
            if self.o.resume and self.finished(stage) is not None:
                self.done[stage] = "resumed"
                continue
            try:
                getattr(self, f"_{stage}")()
            except UserError as err:
                if not self.done:
                    raise
                raise UserError(f"{err} The stages finished so far are kept ({', '.join(self.done)}): add --resume "
                                "to go on from them.") from err
            self.done[stage] = "done"
        return self.summary()

    def _clean(self) -> None:
        folder = self._start("clean")
        rows = self._parts("clean", self.records, fn=functools.partial(stages.clean_part, ctx=self.ctx))
        seen: dict[str, int] = {}
        for r in rows:
            if not r["error_kind"]:
                if len(r["image_id"]) > raw.MAX_ID_CHARS:
                    r.update(error_kind="bad_id", error=f"The id is over {raw.MAX_ID_CHARS} characters.")
                elif r["image_id"] in seen:
                    r.update(error_kind="duplicate_id",
                             error=f"The id {r['image_id'][:60]!r} is also the id of row {seen[r['image_id']] + 2}.")
                else:
                    seen[r["image_id"]] = r["row"]
        ok = [r for r in rows if not r["error_kind"]]
        dupes = duplicate_groups([r["image_id"] for r in ok], [r["sha256"] for r in ok],
                                 [int(r["phash"], 16) for r in ok], self.o.duplicate_distance,
                                 confirm=self._looks_alike([r["image_uri"] for r in ok]))
        for r in rows:
            first, kind = dupes.get(r["image_id"], ("", "")) if not r["error_kind"] else ("", "")
            r.update(duplicate_of=first, duplicate_kind=kind)
        atomic_parquet(folder / "result.parquet", pd.DataFrame(rows))
        atomic_json(folder / "done.json", {"rows": len(rows), "usable": len(ok), "duplicates": len(dupes)})

    def _looks_alike(self, paths: list[str]) -> Callable[[int, int], bool]:
        """The pixel check of a near-duplicate pair: the two images' thumbnails, read (once each) from
        the files the clean stage checked, only for the pairs pHash proposes."""
        from clip_arena.analyzer.images import decode_image, read_regular_file
        from clip_arena.prepare.clean import same_picture, thumbnail

        @functools.lru_cache(maxsize=4096)
        def thumb(i: int):
            data = read_regular_file(Path(paths[i]), paths[i][-120:], self.o.limits)
            return thumbnail(decode_image(data, paths[i][-120:], self.o.limits, stages.HASH_SIZE))

        def alike(i: int, j: int) -> bool:
            try:
                return same_picture(thumb(i), thumb(j))
            except Exception:  # noqa: BLE001 - a file gone since the clean stage: trust pHash alone
                return True

        return alike

    def _attributes(self) -> None:
        self._need("clean")
        folder = self._start("attributes")
        clean = pd.read_parquet(self.folder("clean") / "result.parquet")
        usable = clean[clean["error_kind"] == ""].to_dict("records")
        if self.o.tier == "vlm":
            frame, size = self._vlm(pd.DataFrame(usable), folder), self.o.image_size or FALLBACK_IMAGE_SIZE
            frame.insert(0, "image_id", [r["image_id"] for r in usable])
            # A row the VLM did not answer keeps its image, with "unknown" attributes and its vlm_error.
            frame.insert(1, "error", "")
            frame = frame.drop(columns=["clean_title"], errors="ignore")  # ours: the same rules for every tier
        else:  # the model loads only when a part is left to do: a resumed run may need none
            make = functools.partial(stages.attribute_worker, self.o.model, self.o.device, self.o.precision,
                                     self.vocab, self.o.min_confidence, self.ctx)
            rows = self._parts("attributes", usable, make=make)
            frame = pd.DataFrame(rows, columns=["image_id", "error", *attrs.attribute_columns(self.vocab)])
            size = self.o.image_size or self._model_size()
        atomic_parquet(folder / "result.parquet", frame)
        atomic_json(folder / "done.json", {"rows": len(frame), "tier": self.o.tier, "image_size": size,
                                           "model": self.o.model if self.o.tier == "offline" else self.o.vlm_model})

    def _model_size(self) -> int:
        """The model's square input side (the shards' image size); on CPU in fp32 here, as Ray's driver
        needs no GPU (a local run on the same device finds the model loaded already)."""
        from clip_arena.models import get_encoder

        device = self.o.device if self.engine.name == "local" else "cpu"
        encoder = get_encoder(self.o.model, device, self.o.precision if self.engine.name == "local" else "fp32")
        return int(getattr(encoder.preprocess, "size", 0) or FALLBACK_IMAGE_SIZE)

    def _vlm(self, rows: pd.DataFrame, folder: Path) -> pd.DataFrame:
        try:
            from clip_arena.prepare.vlm.tier import vlm_attributes
        except ImportError as err:
            raise UserError(f"The VLM tier is not available in this install ({err}); use --tier offline.") from None
        try:
            return vlm_attributes(rows, attrs.attributes_of(self.vocab), folder / "vlm", model=self.o.vlm_model,
                                  base_url=self.o.vlm_base_url, progress=lambda m: print(m, file=sys.stderr),
                                  id_column="image_id", image_column="image_uri", title_column="clean_title",
                                  image_limits=self.o.limits).reset_index(drop=True)
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - one sentence for whatever the remote side did
            raise UserError(f"The VLM tier failed ({type(err).__name__}: {str(err)[:200]}); the offline tier "
                            "(--tier offline) needs no server.") from None

    def _split(self) -> None:
        self._need("clean")
        info = self._need("attributes")
        folder = self._start("split")
        clean = pd.read_parquet(self.folder("clean") / "result.parquet")
        found = pd.read_parquet(self.folder("attributes") / "result.parquet").rename(columns={"error": "image_error"})
        usable = clean[clean["error_kind"] == ""].merge(found, on="image_id", how="left")
        bad = usable["image_error"].fillna("") != ""
        gone = usable[bad]
        usable = usable[~bad].drop(columns=["error", "error_kind", "row", "image_error"]).reset_index(drop=True)
        ids = usable["image_id"].tolist()
        category = self.columns.category
        strata = usable[category].tolist() if category else None
        groups = [d or i for d, i in zip(usable["duplicate_of"], ids)]
        previous = {} if self.o.resplit else _previous_splits(self.out / "catalog.parquet")
        kept = sum(i in previous for i in ids)
        usable["split"] = splitting.assign(ids, self.o.split, self.o.seed, strata, groups, previous)
        usable["mini_train"] = splitting.mini_train(ids, usable["split"].tolist(), strata, self.o.mini_train,
                                                    self.o.seed)
        usable["caption"] = [shards.caption(self.o.template, r) for r in usable.to_dict("records")]
        catalog = _ordered(usable, category, self.vocab)
        atomic_parquet(self.out / "catalog.parquet", catalog)
        skipped = [{"row": int(r["row"]) + 2, "image_id": r["image_id"], "kind": r["error_kind"], "reason": r["error"]}
                   for r in clean[clean["error_kind"] != ""].to_dict("records")]
        skipped += [{"row": int(r["row"]) + 2, "image_id": r["image_id"], "kind": "unreadable",
                     "reason": r["image_error"]} for r in gone.to_dict("records")]
        duplicates = [{"image_id": r["image_id"], "duplicate_of": r["duplicate_of"], "kind": r["duplicate_kind"]}
                      for r in catalog.to_dict("records") if r["duplicate_of"]]
        counts = {s: int((catalog["split"] == s).sum()) for s in SPLITS}
        warning = splitting.empty_warning(counts, self.o.split, groups)
        warnings = [warning] if warning else []
        if warning:
            print(f"warning: {warnings[-1]}", file=sys.stderr, flush=True)
        atomic_json(self.out / "report.json", {"input_rows": len(clean), "usable": len(catalog), "splits": counts,
                                               "split_kept": kept, "attributes_tier": info["tier"],
                                               "warnings": warnings, "skipped": skipped,
                                               "duplicates": duplicates})
        atomic_json(folder / "done.json", {"rows": len(catalog), "splits": counts, "image_size": info["image_size"]})

    def _shards(self) -> None:
        info = self._need("split")
        folder = self._start("shards")
        catalog = pd.read_parquet(self.out / "catalog.parquet")
        captions = [shards.caption(self.o.template, r) for r in catalog.to_dict("records")]
        if captions != catalog["caption"].tolist():  # a template other than the split's run: one caption everywhere
            catalog["caption"] = captions
            atomic_parquet(self.out / "catalog.parquet", catalog)
        size = int(info["image_size"])
        manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "catalog": "catalog.parquet",
                    "image_size": size, "caption_template": self.o.template, "shard_count": self.o.shard_count,
                    "shard_size": self.o.shard_size, "splits": {}}
        # The old manifest goes first and the new one comes last: a run killed in between leaves no
        # manifest that counts shards it did not write. Each split is written beside its folder and
        # renamed into place when complete, so a shard under its final name is always whole.
        (self.out / "manifest.json").unlink(missing_ok=True)
        for split_name in SPLITS:
            marker = folder / f"{split_name}.json"
            if marker.is_file():
                manifest["splits"][split_name] = json.loads(marker.read_text(encoding="utf-8"))
                continue
            target = self.out / "shards" / split_name
            partial = target.with_name(f".{split_name}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            rows = shards.in_shard_order(catalog[catalog["split"] == split_name].to_dict("records"), self.o.seed)
            written = shards.write_shards(self._samples(split_name, rows, size), partial, self.o.shard_count,
                                          self.o.shard_size)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(partial, target)
            entry = {"samples": sum(s["samples"] for s in written), "shards": written}
            atomic_json(marker, entry)
            manifest["splits"][split_name] = entry
        manifest["counts"] = {s: manifest["splits"][s]["samples"] for s in SPLITS}
        atomic_json(self.out / "manifest.json", manifest)
        atomic_json(folder / "done.json", manifest["counts"])

    def _samples(self, split_name: str, rows: list[dict], size: int):
        size_rows = self.o.part_rows
        parts = [(n, rows[n * size_rows:(n + 1) * size_rows]) for n in range(math.ceil(len(rows) / size_rows))]
        done, ready, following = 0, {}, 0
        self.progress(f"shards {split_name}", 0, len(rows))
        work = functools.partial(stages.sample_part, ctx=self.ctx, size=size, template=self.o.template)
        for number, samples in self.engine.map_parts(parts, fn=work):
            ready[number] = samples
            while following in ready:  # in the catalog's order, whichever part finished first
                for s in ready.pop(following):
                    if s is not None:
                        yield s
                following += 1
            done += len(samples)
            self.progress(f"shards {split_name}", done, len(rows))

    def summary(self) -> dict:
        out = {"output": str(self.out), "stages": self.done}
        report = self.out / "report.json"
        if report.is_file():
            data = json.loads(report.read_text(encoding="utf-8"))
            out.update({k: data[k] for k in ("input_rows", "usable", "splits", "split_kept", "attributes_tier")})
            out["skipped"] = len(data["skipped"])
            out["duplicates"] = len(data["duplicates"])
        manifest = self.out / "manifest.json"
        if self.done.get("shards") and manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            out["shards"] = {s: len(v["shards"]) for s, v in data["splits"].items()}
        return out


def _previous_splits(path: Path) -> dict[str, str]:
    """{image_id: split} of the catalog a previous run wrote here: those rows keep their split."""
    try:
        old = pd.read_parquet(path, columns=["image_id", "split"])
    except (OSError, ValueError, KeyError):
        return {}
    except Exception:  # noqa: BLE001 - a damaged old catalog only means no splits to keep
        return {}
    return {str(i): str(s) for i, s in zip(old["image_id"], old["split"]) if s in SPLITS}


def _ordered(df: pd.DataFrame, category: str | None, vocab: dict) -> pd.DataFrame:
    first = ["image_id", "image_uri", "caption", "split", "mini_train", "clean_title", "title"]
    first += [category] if category else []
    first += attrs.attribute_columns(vocab)
    first += ["source_uri", "duplicate_of", "duplicate_kind", "sha256", "phash", "width", "height"]
    first = [c for c in dict.fromkeys(first) if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]].reset_index(drop=True)


def _print_progress(stage: str, done: int, total: int) -> None:
    print(f"prepare {stage}: {done:,}/{total:,} rows", file=sys.stderr, flush=True)
