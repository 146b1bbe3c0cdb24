"""Training pairs streamed from WebDataset shards (what `clip-arena prepare` writes: per sample a
`jpg`, its caption in `txt` and its metadata in `json`), fed to the same trainer as a catalog's rows:
the same (image tensor, caption tokens, group code) items, decoded by the same image code.

Shards do not know their length, and the trainer plans its steps (warmup, cosine decay) from it: the
sample count comes from a manifest.json beside the shards when it lists them, else from one pass
over them. Each DataLoader worker reads its own shards and batches them; the batches are cut again
to the run's batch size in the main process (webdataset's advice), so an epoch has exactly the steps
the plan counted, whatever the number of workers."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from clip_arena.core.errors import UserError
from clip_arena.finetune.plan import caption_fields, check_numbers, check_packages, format_caption

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")


@dataclass
class Shards:
    """`finetune --shards PATTERN [--val-shards PATTERN]`: brace patterns as webdataset takes them."""
    train: str
    val: str | None = None


MAX_SHARD_NAMES = 100_000  # a pattern naming more is a typo ('{0..99999999}'), not a dataset
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # pipe:, http:, file:, s3: ... (webdataset's openers)
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.-?(\d+))?$|^([A-Za-z])\.\.([A-Za-z])(?:\.\.-?(\d+))?$")


def name_bound(pattern: str) -> int:
    """An upper bound of the names a brace pattern expands to, counted without expanding it: the
    product over its brace groups of each one's range length or number of alternatives."""
    bound, opened = 1, []
    escaped = False
    for i, ch in enumerate(pattern):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            opened.append(i)
        elif ch == "}" and opened:
            start = opened.pop()
            body = pattern[start + 1:i]
            match = _RANGE.match(body)
            if match and match.group(1) is not None:
                if max(len(g or "") for g in match.groups()) > 18:  # beyond any real count (and int()'s limit)
                    return MAX_SHARD_NAMES + 1
                a, b, step = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1) or 1
                size = abs(b - a) // abs(step) + 1
            elif match:
                size = abs(ord(match.group(5)) - ord(match.group(4))) // (int(match.group(6) or 1) or 1) + 1
            else:
                depth, size = 0, 1
                for c in body:
                    depth += (c == "{") - (c == "}")
                    size += c == "," and depth == 0
            bound *= size
            if bound > MAX_SHARD_NAMES:
                return bound
    return bound


def _local(name: str) -> Path:
    """A shard name as a path, `~` and `~user` expanded; an unknown user's `~name` stays as written,
    as a shell leaves it (Path.expanduser raises there)."""
    try:
        return Path(name).expanduser()
    except RuntimeError:
        return Path(name)


def expand(pattern: str, option: str = "--shards") -> list[str]:
    """The shard files of a pattern ('DIR/shard-{000000..000009}.tar') or of a folder (its *.tar, in
    name order): local files only, all existing, at most MAX_SHARD_NAMES. Returned as absolute paths,
    so webdataset never reads one as a command (pipe:) or a URL."""
    import braceexpand

    if not pattern.strip():
        raise UserError(f"{option} is empty; give the shards' pattern (e.g. 'OUT/shards/train/shard-{{000000..000009}}.tar') "
                        "or their folder.")
    if name_bound(pattern) > MAX_SHARD_NAMES:
        raise UserError(f"{option} {pattern[:80]!r} names more than {MAX_SHARD_NAMES:,} shard files; check the braces' "
                        "range.")
    try:
        names = (u for part in pattern.split("::") for u in braceexpand.braceexpand(part.strip()) if u)
        urls = list(itertools.islice(names, MAX_SHARD_NAMES + 1))
    except braceexpand.UnbalancedBracesError:
        raise UserError(f"{option} {pattern!r} has unbalanced braces; write e.g. "
                        "'DIR/shard-{000000..000009}.tar'.") from None
    if len(urls) > MAX_SHARD_NAMES:
        raise UserError(f"{option} {pattern[:80]!r} names more than {MAX_SHARD_NAMES:,} shard files; check the braces' "
                        "range.")
    if not urls:
        raise UserError(f"{option} {pattern!r} names no shard files.")
    if len(urls) == 1 and _local(urls[0]).is_dir():  # a split's folder: every shard in it
        urls = sorted(str(f) for f in _local(urls[0]).glob("*.tar") if f.is_file())
        if not urls:
            raise UserError(f"{option} {pattern!r} is a folder without .tar shards.")
    remote = next((u for u in urls if _SCHEME.match(u) and not Path(u).is_file()), None)
    if remote is not None:
        raise UserError(f"{option} reads local shard files only, not {remote[:60]!r} (commands and URLs are neither run "
                        "nor fetched): copy the shards to this machine and give their path.")
    missing = [u for u in urls if not _local(u).is_file()]
    if missing:
        many = len(missing) > 1
        raise UserError(f"{option} names {len(missing)} shard file{'s' * many} that {'do' if many else 'does'} not "
                        f"exist (first: {missing[0]!r}); write them with `clip-arena prepare` or fix the pattern.")
    return [str(_local(u).absolute()) for u in urls]


def manifest_count(urls: list[str]) -> int | None:
    """Samples in these shards by a manifest.json beside them (in their folder or up to two above),
    or None. prepare writes {"splits": {"train": {"shards": [{"name": "shard-000000.tar", "samples": N}]}}}
    for OUT/shards/train/; any record naming a shard and a count is read, and every shard must be found
    (with the size in bytes the record gives, when it gives one)."""
    if any("://" in u or u.startswith("pipe:") for u in urls):
        return None
    names = {Path(u).resolve() for u in urls}
    folder = Path(urls[0]).resolve().parent
    for candidate in (folder, folder.parent, folder.parent.parent):
        path = candidate / "manifest.json"
        if path.is_file():
            try:
                counts = _shard_counts(json.loads(path.read_text(encoding="utf-8")), path.parent, ())
            except (OSError, ValueError, RecursionError):
                continue
            if names <= counts.keys():
                return sum(counts[n] for n in names)
    return None


COUNT_KEYS = ("samples", "count", "num_samples", "n")
NAME_KEYS = ("name", "file", "path", "shard", "url")


def _shard_counts(node, base: Path, keys: tuple) -> dict[Path, int]:
    """Every {name/file/path: ..., samples/count: N} record of a manifest, keyed by the shard's resolved
    path: the name under the manifest's folder, or under shards/<key> or <key> for a key above the
    record (a split's name), so the train and val shards of one name stay apart."""
    found: dict[Path, int] = {}
    if isinstance(node, dict):
        name = next((node[k] for k in NAME_KEYS if isinstance(node.get(k), str)), None)
        count = next((node[k] for k in COUNT_KEYS if isinstance(node.get(k), int)), None)
        size = node.get("bytes") if isinstance(node.get("bytes"), int) else None
        if name and count is not None:
            for where in [base] + [base / "shards" / k for k in keys] + [base / k for k in keys]:
                path = (where / name).resolve()
                if size is not None and path.is_file() and path.stat().st_size != size:
                    continue  # not the file the manifest counted (rewritten, or cut short): count by a pass
                found.setdefault(path, count)
        for key, value in node.items():
            found.update(_shard_counts(value, base, keys + (str(key),) if key not in NAME_KEYS else keys))
    elif isinstance(node, list):
        for value in node:
            found.update(_shard_counts(value, base, keys))
    return found


def raw_samples(urls: list[str], shuffle: int = 0, seed: int = 0):
    """The shards' samples as dicts of bytes, in file order or through a seeded shuffle buffer (and
    the shard order shuffled with the same seed). In a DataLoader worker, only that worker's shards.
    The buffer is filled before the first sample leaves it (webdataset's default starts after 100, so
    each epoch's first batches came from the first few hundred samples of a shard: of a catalog sorted
    by category, a handful of categories): a buffer as large as the split is a full shuffle."""
    import webdataset as wds

    stream = wds.WebDataset(urls, shardshuffle=len(urls) if shuffle else False, seed=seed, nodesplitter=None,
                            empty_check=False, handler=_unreadable)
    return stream.shuffle(shuffle, initial=shuffle, seed=seed) if shuffle else stream


def _unreadable(exn: Exception):
    """webdataset's error handler: a shard cut short (a killed copy or write) or not a tar at all is
    one sentence naming the file (webdataset appends the shard's url to the error's args)."""
    if isinstance(exn, UserError):  # ours, passing an outer handler that appended to its args
        raise UserError(str(exn.args[0])) from exn.__cause__
    detail, _, where = (str(exn.args[0]) if exn.args else "").partition(" @ ")  # the inner handler's form
    url = exn.args[-1] if len(exn.args) > 1 and isinstance(exn.args[-1], str) else None
    if url is None:
        found = re.search(r"name='([^']*)'", where)
        url = found.group(1) if found else "(one of them)"
    detail = detail[:120] or type(exn).__name__
    raise UserError(f"The shard {url} cannot be read as a WebDataset tar ({type(exn).__name__}: {detail}): it is cut "
                    "short or not a shard; write it again with `clip-arena prepare`.") from exn


def one_sentence(err: UserError) -> UserError:
    """A UserError raised in a DataLoader worker comes back with the worker's traceback in its message:
    its last line is the sentence."""
    text = str(err)
    if "Traceback" not in text:
        return err
    last = [line for line in text.splitlines() if line.strip()][-1]
    return UserError(last.split("UserError: ", 1)[-1])


def _text(sample: dict, key: str) -> str:
    value = sample.get(key)
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else (value or "")


def metadata(sample: dict) -> dict:
    if "json" not in sample:
        return {}
    try:
        value = json.loads(_text(sample, "json"))
    except ValueError as err:
        raise UserError(f"Sample {sample.get('__key__')} in {sample.get('__url__')} has unreadable json: {err}.") from err
    return value if isinstance(value, dict) else {}


def _where(sample: dict) -> str:
    return f"sample {sample.get('__key__')} of {sample.get('__url__')}"


@dataclass
class Scan:
    count: int = 0
    values: dict[str, set] = field(default_factory=dict)


def scan(urls: list[str], fields: list[str]) -> Scan:
    """One pass without decoding any image: the sample count and the values of metadata `fields`."""
    result = Scan(values={f: set() for f in fields})
    for sample in raw_samples(urls):
        result.count += 1
        if fields:
            meta = metadata(sample)
            for f in fields:
                if group_value(meta.get(f)) is not None:
                    result.values[f].add(group_value(meta.get(f)))
    return result


def group_value(value) -> str | None:
    return None if value is None or value == "" else str(value)


def check_first_sample(urls: list[str], template: str, columns: dict[str, str | None], option: str) -> None:
    """The first sample has an image and a caption, and the metadata the template and options name."""
    try:
        sample = next(iter(raw_samples(urls[:1])), None)
    except UserError:
        raise
    except Exception as err:  # tarfile's and webdataset's many errors on a file that is not a shard
        raise UserError(f"{urls[0]} (from {option}) cannot be read as a WebDataset tar: {err}.") from err
    if sample is None:
        raise UserError(f"{urls[0]} (from {option}) holds no samples.")
    if not any(k in sample for k in IMAGE_KEYS) or "txt" not in sample:
        raise UserError(f"The {_where(sample)} has {', '.join(k for k in sample if not k.startswith('__'))}; a "
                        f"training sample needs an image (jpg) and a caption (txt).")
    meta = metadata(sample)
    named = {f: "the caption template" for f in caption_fields(template) if f != "caption"}
    named.update({c: f"--{o}" for o, c in columns.items() if c})
    missing = [f for f in named if f not in meta]
    if missing:
        raise UserError(f"The shards' metadata (json, first sample of {urls[0]}) has no "
                        f"{', '.join(f'{f} (named by {named[f]})' for f in missing)}; it has "
                        f"{', '.join(sorted(meta)) or 'nothing'}.")


class ShardSource:
    """Train (and val) shards, checked and counted before any model loads; the shard counterpart of
    data.CatalogSource, with the same methods the trainer calls."""

    def __init__(self, shards: Shards, cfg):
        if cfg.batch_groups:
            raise UserError("--batch-groups draws each batch from chosen rows, which needs --catalog; shards are "
                            "streamed (use --positives, which works with both).")
        check_numbers(cfg)
        check_packages(cfg)
        self.cfg = cfg
        self.train_urls = expand(shards.train, "--shards")
        self.val_urls = expand(shards.val, "--val-shards") if shards.val is not None else []
        columns = {"positives": cfg.positives}
        check_first_sample(self.train_urls, cfg.caption_template, columns, "--shards")
        if self.val_urls:
            check_first_sample(self.val_urls, cfg.caption_template, {}, "--val-shards")
        count = None if cfg.positives else manifest_count(self.train_urls)
        if count is None:  # the values of --positives need the pass anyway
            try:
                found = scan(self.train_urls, [cfg.positives] if cfg.positives else [])
            except UserError:
                raise
            except Exception as err:  # a truncated or foreign tar after the first sample
                raise UserError(f"The --shards files cannot all be read as WebDataset tars: {err}.") from err
            count = found.count
            values = found.values.get(cfg.positives, set())
        else:
            values = set()
        if count == 0:
            raise UserError(f"The --shards files ({len(self.train_urls)}) hold no samples.")
        self.n_train = count
        # Codes 0..n-1 in sorted order: the centre loss indexes its centres with them.
        self.codes = {v: i for i, v in enumerate(sorted(values))}

    def train_pairs(self, transform, tokenizer, group_column: str | None, shuffle: bool = True):
        return ShardPairs(self.train_urls, self.cfg.caption_template, transform, tokenizer, group_column, self.codes,
                          self.cfg.shuffle_buffer if shuffle else 0, self.cfg.seed)

    def val_pairs(self, transform, tokenizer):
        if not self.val_urls:
            return None
        return ShardPairs(self.val_urls, self.cfg.caption_template, transform, tokenizer)

    def loader(self, train_set, cfg, generator):
        if cfg.workers > len(self.train_urls):  # each worker reads whole shards
            print(f"warning: {len(self.train_urls)} shard{'s' * (len(self.train_urls) > 1)} for {cfg.workers} workers: "
                  f"{cfg.workers - len(self.train_urls)} of them will have nothing to read (--workers "
                  f"{len(self.train_urls)} does as well).", file=sys.stderr, flush=True)
        loader = StreamLoader(train_set, self.n_train, cfg.batch_size, cfg.workers, generator)
        return loader, loader


class ShardPairs(IterableDataset):
    """(image tensor, caption tokens, group code) per sample, as data.PairDataset gives per row. The
    caption is the template over the sample's json metadata, `{caption}` being its txt."""

    def __init__(self, urls, template, transform, tokenizer, group_column=None, codes=None, shuffle=0, seed=0):
        self.urls, self.template, self.transform, self.tokenizer = urls, template, transform, tokenizer
        self.group_column, self.codes = group_column, codes or {}
        self.shuffle, self.seed, self.epoch = shuffle, seed, 1

    def _seed(self) -> int:
        """One seed per (run seed, epoch, worker): a resumed run reads each epoch as the first run did."""
        info = get_worker_info()
        return random.Random(f"{self.seed}/{self.epoch}/{info.id if info else 0}").getrandbits(32)

    def __iter__(self):
        for index, sample in enumerate(raw_samples(self.urls, self.shuffle, self._seed())):
            yield self.item(sample, index)

    def item(self, sample: dict, index: int):
        from clip_arena.analyzer.images import FetchLimits, decode_image

        key = next((k for k in IMAGE_KEYS if k in sample), None)
        if key is None:
            raise UserError(f"The {_where(sample)} has no image (jpg).")
        image = decode_image(sample[key], _where(sample), FetchLimits())
        meta = metadata(sample)
        caption = format_caption(self.template, {**meta, "caption": _text(sample, "txt")})
        value = group_value(meta.get(self.group_column)) if self.group_column else None
        if value is not None and value in self.codes:
            group = self.codes[value]
        else:  # no value: a group of its own (a stable negative code, as the catalog's -1 - row)
            group = -1 - (zlib.crc32(f"{sample.get('__url__')}/{sample.get('__key__')}".encode()) & 0x3FFFFFFF)
        return self.transform(image), self.tokenizer([caption])[0], group


class StreamLoader:
    """Batches of exactly `batch_size` from the shards (the last partial one dropped when there is
    more than one batch, as the catalog's loader does), whatever the number of workers: an epoch is
    the planned number of batches. `epoch` counts up on each pass and seeds that pass's shuffle; the
    trainer sets it when resuming."""

    def __init__(self, dataset: ShardPairs, n: int, batch_size: int, workers: int, generator):
        from clip_arena.finetune.data import collate

        self.dataset, self.n, self.batch_size, self.epoch = dataset, n, batch_size, 0
        self.drop_last = n > batch_size
        self.loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                                 generator=generator)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self):
        import torch

        self.epoch += 1
        self.dataset.epoch = self.epoch  # before the workers start: each takes a copy of the dataset
        pending, have, made = [], 0, 0
        chunks = iter(self.loader)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except UserError as err:
                raise one_sentence(err) from None
            pending.append(chunk)
            have += len(chunk[0])
            while have >= self.batch_size and made < len(self):
                joined = [torch.cat(parts) if len(pending) > 1 else parts[0] for parts in zip(*pending)]
                yield tuple(t[:self.batch_size] for t in joined)
                made += 1
                have -= self.batch_size
                pending = [tuple(t[self.batch_size:] for t in joined)] if have else []
            if made == len(self):  # the planned epoch is done: the rest is not even decoded, as the
                return             # catalog's loader never loads the rows it drops
        if have:
            yield tuple(torch.cat(parts) for parts in zip(*pending))
            made += 1
        if made < len(self):
            print(f"warning: the shards held fewer samples this epoch than the {self.n} the run was planned for "
                  f"({made} of {len(self)} batches; a manifest.json out of date?).", file=sys.stderr, flush=True)
