"""Fine-tuning from WebDataset shards (as `clip-arena prepare` writes them): the same trainer, the same
result as from the catalog on the same rows; the 8-bit optimiser's refusal off CUDA; tracking."""

import io
import json
import os
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

from conftest import with_project
from clip_arena.cli.main import main
from clip_arena.core.errors import UserError
from clip_arena.finetune import tracking
from clip_arena.finetune.optimizers import make_optimizer
from clip_arena.finetune.plan import TrainConfig
from clip_arena.finetune.shards import Shards, ShardPairs, ShardSource, StreamLoader, expand, manifest_count
from clip_arena.finetune.train import finetune
from clip_arena.index.catalog import build_table, catalog_meta, write_catalog
from clip_arena.models import get_encoder
from tiny_models import TINY_OPEN_CLIP_CFG

N_TRAIN, N_VAL = 8, 4
CATEGORIES = ("a-warm", "b-cool", "c-dark")  # sorted = first seen: both paths number them alike


def _jpeg(seed: int) -> bytes:
    """A 32x32 (the tiny model's input) image of coloured noise: random crops change it."""
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


def _write_shards(folder, rows, per_shard):
    """What prepare writes: __key__, jpg, txt, json per sample, `per_shard` samples a shard."""
    folder.mkdir(parents=True)
    with wds.ShardWriter(str(folder / "shard-%06d.tar"), maxcount=per_shard, verbose=0) as sink:
        for r in rows:
            sink.write({"__key__": r["image_id"], "jpg": r["jpg"], "txt": r["caption"],
                        "json": {"id": r["image_id"], "category": r["category"], "split": r["split"]}})


@pytest.fixture
def same_rows(tmp_path):
    """One set of rows as a catalog (JPEG files) and as shards (the same JPEG bytes)."""
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(N_TRAIN + N_VAL):
        jpg = _jpeg(i)
        (tmp_path / "images" / f"img{i}.jpg").write_bytes(jpg)
        rows.append({"image_id": f"img{i}", "image_uri": f"images/img{i}.jpg", "caption": f"pattern number {i}",
                     "split": "train" if i < N_TRAIN else "val", "category": CATEGORIES[i % 3], "jpg": jpg})
    catalog = tmp_path / "catalog.parquet"
    columns = ("image_id", "image_uri", "caption", "split", "category")
    write_catalog(catalog, build_table({k: [r[k] for r in rows] for k in columns}, {}), catalog_meta({}, {}),
                  require_embeddings=False)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP_CFG))
    return tmp_path, rows, catalog, f"open_clip:{config}"


def _catalog_order(n: int, seed: int) -> list[int]:
    """The order the catalog's loader takes the first epoch's rows in: a DataLoader(shuffle=True)
    with a generator seeded with the run's seed, asked here for row numbers instead of rows."""
    rows = DataLoader(list(range(n)), batch_size=n, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return next(iter(rows)).tolist()


def test_training_from_shards_equals_training_from_the_catalog_on_the_same_rows(same_rows):
    """What is compared: the same rows, seed and recipe (group loss and centre loss over the category,
    random crops), one epoch of two steps. The shards hold the train rows in the order the catalog's
    loader draws them and are read with the shuffle buffer off, so both paths feed the same batches;
    then the loss, the val recall and every trained weight must agree to float tolerance."""
    tmp, rows, catalog, init = same_rows
    seed = 3
    train = [rows[i] for i in _catalog_order(N_TRAIN, seed)]
    _write_shards(tmp / "shards" / "train", train, per_shard=5)  # two shards, a batch across both
    _write_shards(tmp / "shards" / "val", rows[N_TRAIN:], per_shard=100)
    cfg = TrainConfig(scenario="full", epochs=1, batch_size=4, lr=5e-3, warmup_steps=1, seed=seed,
                      positives="category", centre_loss_weight=1.0, shuffle_buffer=0)
    from_catalog = finetune(catalog, init, tmp / "cat_run", cfg, progress=False)
    shards = Shards(str(tmp / "shards/train/shard-{000000..000001}.tar"), str(tmp / "shards/val/shard-000000.tar"))
    from_shards = finetune(shards, init, tmp / "shard_run", cfg, progress=False)

    a, b = from_catalog.history[-1], from_shards.history[-1]
    assert a["step"] == b["step"] == 2
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    assert {k: b[k] for k in b if k.startswith("recall@")} == {k: a[k] for k in a if k.startswith("recall@")}
    # The trained models embed alike. (Their weights agree but for the attention's key biases, whose
    # gradient is zero in exact arithmetic: Adam turns its float noise, here from summing the centre
    # loss's group means in another order, into steps of +-lr that change no output.)
    images = [Image.open(io.BytesIO(r["jpg"])) for r in rows]
    captions = [r["caption"] for r in rows]
    for kind, encode in (("image", lambda e: e.encode_images(images)), ("text", lambda e: e.encode_texts(captions))):
        a_vecs, b_vecs = (encode(get_encoder(f"open_clip:local-dir:{tmp / run / 'model'}"))
                          for run in ("cat_run", "shard_run"))
        assert np.allclose(a_vecs, b_vecs, atol=1e-5), (kind, np.abs(a_vecs - b_vecs).max())


class FakeTracker:
    """trackio's and wandb's module API, recording the calls."""

    def __init__(self):
        self.calls = []

    def init(self, **kw):
        self.calls.append(("init", kw))

    def log(self, metrics, step=None):
        self.calls.append(("log", metrics, step))

    def finish(self):
        self.calls.append(("finish",))


def test_shards_stream_shuffled_by_epoch_resume_as_if_never_stopped_and_are_tracked(same_rows, monkeypatch):
    tmp, rows, _, init = same_rows
    _write_shards(tmp / "shards" / "train", rows[:N_TRAIN], per_shard=3)  # 3 shards: 3, 3, 2 samples
    (tmp / "manifest.json").write_text(json.dumps(  # prepare's manifest, two folders up: counts read from it
        {"splits": {"train": {"samples": 8, "shards": [{"name": f"shard-00000{i}.tar", "samples": c}
                                                       for i, c in enumerate((3, 3, 2))]}}}))
    fake = FakeTracker()
    monkeypatch.setattr(tracking, "load_module", lambda kind: fake)
    monkeypatch.setattr("clip_arena.finetune.shards.check_packages", lambda cfg: None)  # whether trackio is or not
    shards = Shards(str(tmp / "shards/train/shard-{000000..000002}.tar"))
    cfg = TrainConfig(scenario="dual_lora", epochs=2, batch_size=3, lr=1e-3, warmup_steps=1, seed=0,
                      shuffle_buffer=4, track="trackio")
    whole = finetune(shards, init, tmp / "whole", cfg, progress=False)
    assert [h["step"] for h in whole.history] == [2, 4]  # 8 samples, batches of 3, the short one dropped
    steps = [c for c in fake.calls if c[0] == "log" and "train/loss" in c[1]]
    assert [c[2] for c in steps] == [1, 2, 3, 4]
    assert all(c[1]["train/grad_norm"] > 0 and c[1]["train/lr"] > 0 for c in steps)
    assert fake.calls[0][1]["project"] == "clip-arena" and fake.calls[0][1]["name"] == "whole"
    assert fake.calls[-1] == ("finish",)

    # Stopped after epoch 1 (as a killed run whose last checkpoint is epoch 1), then resumed.
    first = finetune(shards, init, tmp / "split", TrainConfig(**{**cfg.__dict__, "max_steps": 2}), progress=False)
    resumed = finetune(shards, init, tmp / "split", cfg, resume=True, progress=False)
    assert resumed.history[0] == first.history[0]
    assert resumed.history == whole.history  # epoch 2 read in the same shuffled order as the whole run's


def test_the_sample_count_comes_from_a_manifest_that_lists_the_shards_else_none(tmp_path):
    out = tmp_path / "out"
    for split, n in (("train", 5), ("val", 3)):
        _write_shards(out / "shards" / split, [{"image_id": f"{split}{i}", "jpg": _jpeg(i), "caption": "c",
                                                 "category": "a", "split": split} for i in range(n)], per_shard=2)
    train = expand(str(out / "shards/train/shard-{000000..000002}.tar"))
    val = expand(str(out / "shards/val/shard-{000000..000001}.tar"))
    assert manifest_count(train) is None
    # prepare's manifest: bare shard names per split, the same names in train and val
    (out / "manifest.json").write_text(json.dumps({"splits": {
        "train": {"samples": 5, "shards": [{"name": f"shard-00000{i}.tar", "samples": n, "sha256": "x"}
                                           for i, n in enumerate((2, 2, 1))]},
        "val": {"samples": 3, "shards": [{"name": f"shard-00000{i}.tar", "samples": n} for i, n in enumerate((2, 1))]}},
        "counts": {"train": 5, "val": 3}}))
    assert manifest_count(train) == 5 and manifest_count(train[:2]) == 4 and manifest_count(val) == 3
    (out / "manifest.json").write_text(json.dumps(  # paths relative to the manifest
        {"train": [{"path": f"shards/train/shard-00000{i}.tar", "count": n} for i, n in enumerate((2, 2, 1))]}))
    assert manifest_count(train) == 5 and manifest_count(val) is None
    (out / "manifest.json").write_text('{"train": {"count": 5}}')  # no shard named: counted by a pass
    assert manifest_count(train) is None
    (out / "manifest.json").write_text('[[[[' * 2000)  # unreadable: counted by a pass
    assert manifest_count(train) is None


def _tar(path, members: dict):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("case, message", [
    ("missing", "names 2 shard files that do not exist"),
    ("garbage", "cannot be read as a WebDataset tar"),
    ("no_txt", "needs an image (jpg) and a caption (txt)"),
    ("no_field", "has no style"),
    ("truncated", "shard-000001.tar cannot be read as a WebDataset tar"),
])
def test_bad_shards_are_refused_in_one_sentence_before_the_model_loads(tmp_path, case, message):
    (tmp_path / "s").mkdir()
    if case == "garbage":
        (tmp_path / "s" / "shard-000000.tar").write_bytes(b"not a tar at all" * 100)
    elif case == "no_txt":
        _tar(tmp_path / "s" / "shard-000000.tar", {"a.jpg": _jpeg(0), "a.json": b"{}"})
    elif case == "no_field":
        _tar(tmp_path / "s" / "shard-000000.tar", {"a.jpg": _jpeg(0), "a.txt": b"x", "a.json": b'{"id": "a"}'})
    elif case == "truncated":  # the first shard fine, the second cut short (a copy that stopped)
        (tmp_path / "s").rmdir()
        _write_shards(tmp_path / "s", [{"image_id": f"k{i}", "jpg": _jpeg(i), "caption": "c", "category": "a",
                                        "split": "train", "style": "x"} for i in range(4)], per_shard=2)
        last = tmp_path / "s" / "shard-000001.tar"
        last.write_bytes(last.read_bytes()[:1500])
    several = case in ("missing", "truncated")
    pattern = str(tmp_path / "s" / ("shard-{000000..000001}.tar" if several else "shard-000000.tar"))
    cfg = TrainConfig(scenario="full", caption_template="{caption}" if case == "truncated" else "{caption}, {style}")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        finetune(Shards(pattern), "open_clip:/nonexistent/never-loaded.json", tmp_path / "run", cfg, progress=False)
    assert not (tmp_path / "run").exists()


@given(st.text(max_size=40))
@example("~0")  # an unknown user: Path.expanduser raised RuntimeError (found by hypothesis)
@settings(max_examples=60, deadline=None)
def test_any_shard_pattern_expands_or_is_refused_clearly(pattern):
    try:
        urls = expand(pattern)
    except UserError as err:
        assert "\n" not in str(err)
    else:
        assert urls and all("{" not in u or "}" not in u for u in urls)


class Numbers(torch.utils.data.IterableDataset):
    """Samples 0..n-1, split among DataLoader workers as shards are."""

    def __init__(self, n):
        self.n, self.epoch = n, 0

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for i in range(worker, self.n, workers):
            yield torch.tensor([float(i)]), torch.tensor([i]), i


@pytest.mark.parametrize("n, workers", [(10, 0), (10, 2), (3, 2)])
def test_every_worker_s_batches_are_cut_to_the_run_s_batch_size(n, workers):
    loader = StreamLoader(Numbers(n), n, batch_size=4, workers=workers, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    sizes = [len(b[0]) for b in batches]
    assert len(batches) == len(loader) and loader.epoch == 1
    if n > 4:  # as the catalog's loader: full batches, the remainder dropped
        assert sizes == [4, 4] and len({int(v) for b in batches for v in b[2]}) == 8
    else:
        assert sizes == [3] and sorted(batches[0][2].tolist()) == [0, 1, 2]


def test_adamw8bit_is_refused_off_cuda_in_one_sentence_and_built_by_bitsandbytes_on_cuda(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(UserError, match=r"--optimizer adamw8bit runs on CUDA GPUs only .* this run is on cpu"):
        make_optimizer(model, "adamw8bit", 1e-3, 0.1, "cpu")
    made = {}
    fake = types.ModuleType("bitsandbytes")
    fake.optim = types.SimpleNamespace(AdamW8bit=lambda groups, lr: made.update(groups=groups, lr=lr) or "8bit")
    monkeypatch.setitem(sys.modules, "bitsandbytes", fake)
    assert make_optimizer(model, "adamw8bit", 1e-3, 0.1, "cuda:0") == "8bit"
    assert made["lr"] == 1e-3 and [g["weight_decay"] for g in made["groups"]] == [0.1, 0.0]
    assert isinstance(make_optimizer(model, "adamw", 1e-3, 0.1, "cpu"), torch.optim.AdamW)


def test_finetune_cli_from_shards(same_rows, capsys):
    """The command: shards streamed by two workers, validation shards (given as their folder), one
    JSON record per epoch; --val-shards without --shards is one sentence."""
    tmp, rows, _, init = same_rows
    _write_shards(tmp / "shards" / "train", rows[:N_TRAIN], per_shard=4)
    _write_shards(tmp / "shards" / "val", rows[N_TRAIN:], per_shard=100)
    code = main(["finetune", "--shards", str(tmp / "shards/train/shard-{000000..000001}.tar"),
                 "--val-shards", str(tmp / "shards/val"), "--scenario", "dual_lora",  # a folder: its shards
                 "--model", init, "-o", str(tmp / "run"), "--epochs", "2", "--batch-size", "4", "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["step"] for r in records] == [2, 4] and "recall@1" in records[-1]
    assert f"model saved: open_clip:local-dir:{tmp / 'run' / 'model'}" in out
    assert get_encoder(f"open_clip:local-dir:{tmp / 'run' / 'model'}").encode_texts(["pattern number 1"]).shape == (1, 32)
    assert main(["finetune", "--catalog", str(tmp / "catalog.parquet"), "--val-shards", str(tmp / "shards/val"),
                 "--scenario", "full", "--model", init, "-o", str(tmp / "x")]) == 2
    assert "--val-shards goes with --shards" in capsys.readouterr().err
    # the flags the README and the messages name exist (they did not: argparse refused them, exit 2
    # with "unrecognized arguments"); a field the shards lack, or groups on a stream, is one sentence
    base = ["finetune", "--shards", str(tmp / "shards/train"), "--scenario", "full", "--model", init, "-o", str(tmp / "y")]
    assert main(base + ["--positives", "colour"]) == 2
    assert "colour" in (err := capsys.readouterr().err) and "unrecognized" not in err
    assert main(base + ["--batch-groups", "category"]) == 2
    assert "--batch-groups" in (err := capsys.readouterr().err) and "--catalog" in err and "unrecognized" not in err


TRACK = """
import sys
from clip_arena.finetune.tracking import open_tracker
tracker = open_tracker("trackio", "shards-test", "run", {"lr": 0.1})
for step in (1, 2):
    tracker.log({"train/loss": 1.0 / step, "train/lr": 0.1, "train/grad_norm": 2.0}, step)
tracker.log({"epoch": 1, "val/recall@1": 0.5}, 2)
tracker.finish()
print("done")
"""


def test_trackio_records_what_the_trainer_logs_where_its_dashboard_reads(tmp_path, monkeypatch):
    """The tracker over the real trackio (local files, no network), in a process of its own: trackio
    reads TRACKIO_DIR once, at import. Its chatter goes to stderr; stdout stays the trainer's."""
    pytest.importorskip("trackio")
    proc = subprocess.run([sys.executable, "-c", TRACK], capture_output=True, text=True, timeout=120,
                          env=with_project({**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio")}))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n" and "Trackio" in proc.stderr
    from trackio import sqlite_storage

    monkeypatch.setattr(sqlite_storage, "TRACKIO_DIR", tmp_path / "trackio")
    logs = sqlite_storage.SQLiteStorage.get_logs("shards-test", "run")
    assert [(r["step"], r["train/loss"], r["train/grad_norm"]) for r in logs if "train/loss" in r] == [(1, 1.0, 2.0),
                                                                                                    (2, 0.5, 2.0)]
    assert [r["val/recall@1"] for r in logs if "val/recall@1" in r] == [0.5]


def test_adamw8bit_on_this_cpu_machine_is_one_sentence_and_nothing_loads(same_rows, tmp_path, capsys):
    """Whether bitsandbytes is installed (then: CUDA only) or not (then: install it), one sentence."""
    _, _, catalog, _ = same_rows
    code = main(["finetune", "--catalog", str(catalog), "--scenario", "full", "--model",
                 "open_clip:/nonexistent/never-loaded.json", "-o", str(tmp_path / "run"), "--optimizer", "adamw8bit",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "--optimizer adamw8bit" in err and len(err.strip().splitlines()) == 1
    assert "never-loaded" not in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("change, message", [
    ({"optimizer": "adamw8bit"}, "--optimizer adamw8bit needs bitsandbytes, which is not installed"),
    ({"track": "wandb"}, "--track wandb needs the wandb package, which is not installed (pip install wandb)"),
])
def test_a_missing_optional_package_is_named_with_its_install_line(monkeypatch, change, message):
    import importlib.util

    from clip_arena.finetune.plan import check_packages

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # as on a machine without them
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_packages(TrainConfig(**change))


def test_shard_patterns_name_local_files_only_a_bounded_number_of_them(tmp_path, monkeypatch):
    """No shell command (pipe:), no URL, no runaway brace range, no empty pattern: each one sentence,
    nothing run or fetched; a local file whose name has a colon still reads."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "ran"
    for pattern, message in [(f"pipe:touch {marker}; cat x.tar", "local shard files only"),
                             ("http://127.0.0.1:9/shard-000000.tar", "local shard files only"),
                             ("file:///etc/shard.tar", "local shard files only"),
                             ("s-{0..99999999}.tar", "more than 100,000 shard files"),
                             ("s-{0..999}-{0..999}.tar", "more than 100,000 shard files"),
                             ("s-{0..9" + "9" * 5000 + "}.tar", "more than 100,000 shard files"),
                             ("", "is empty"), ("  ", "is empty")]:
        with pytest.raises(UserError, match=message):
            expand(pattern)
    assert not marker.exists()
    _tar(tmp_path / "a:b.tar", {"a.jpg": _jpeg(0), "a.txt": b"x"})
    assert expand("a:b.tar") == [str(tmp_path / "a:b.tar")]
    assert main(["finetune", "--shards", "", "--scenario", "full", "--model", "x", "-o", str(tmp_path / "r")]) == 2


def test_a_cut_short_shard_is_one_sentence_naming_it_and_a_stale_manifest_is_not_trusted(tmp_path):
    """A shard truncated under a manifest that still counts it whole: the manifest's size check sends the
    count to a pass, and a shard found short while training (a manifest without sizes) is one sentence
    naming the file, from a DataLoader worker too."""
    folder = tmp_path / "shards" / "train"
    _write_shards(folder, [{"image_id": f"k{i}", "jpg": _jpeg(i), "caption": "c", "category": "a", "split": "train"}
                           for i in range(6)], per_shard=3)
    urls = expand(str(folder))
    records = [{"name": Path(u).name, "samples": 3, "bytes": os.path.getsize(u)} for u in urls]
    (tmp_path / "manifest.json").write_text(json.dumps({"splits": {"train": {"shards": records}}}))
    assert manifest_count(urls) == 6
    Path(urls[1]).write_bytes(Path(urls[1]).read_bytes()[:3000])
    assert manifest_count(urls) is None
    with pytest.raises(UserError, match=r"The shard .*shard-000001.tar cannot be read as a WebDataset tar"):
        ShardSource(Shards(str(folder)), TrainConfig(scenario="full"))
    for workers in (0, 1):
        pairs = ShardPairs(urls, "{caption}", lambda image: torch.zeros(1), lambda texts: torch.zeros(1, 1))
        loader = StreamLoader(pairs, 6, batch_size=2, workers=workers, generator=torch.Generator().manual_seed(0))
        with pytest.raises(UserError) as err:
            list(loader)
        assert "shard-000001.tar cannot be read" in str(err.value) and "\n" not in str(err.value)


def test_the_train_images_a_full_batch_leaves_out_are_said_once():
    from clip_arena.finetune.plan import dropped_note

    note = dropped_note(23, 8)
    assert note.startswith("note: 23 train images in full batches of 8: 7 of them sit out each epoch")
    assert "--batch-size" not in note  # 23 is prime: no batch size uses them all
    assert "--batch-size 6 uses them all" in dropped_note(24, 7)
    assert dropped_note(24, 8) is None and dropped_note(5, 8) is None and dropped_note(23, 8, "category") is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_buffer_as_large_as_the_split_shuffles_the_whole_split_from_the_first_sample(tmp_path, seed):
    """A catalog sorted by category, one shard: with --shuffle-buffer at least the split's size, the
    first batch of an epoch is drawn from the whole split, not from the shard's first rows (webdataset's
    buffer started yielding after 100 samples: the demo's first batches were two or three subgroups)."""
    from clip_arena.finetune.shards import raw_samples

    n = 400
    _write_shards(tmp_path / "s", [{"image_id": f"{i:04d}", "jpg": b"x", "caption": "c", "category": "a",
                                    "split": "train"} for i in range(n)], per_shard=n)
    urls = expand(str(tmp_path / "s" / "shard-000000.tar"))
    order = [int(s["__key__"]) for s in raw_samples(urls, shuffle=n, seed=seed)]
    assert sorted(order) == list(range(n))  # every sample once
    first_batch = order[:32]
    assert max(first_batch) >= n // 2 and min(first_batch) < n // 2, first_batch
    # a buffer smaller than the split still mixes only within its window
    window = [int(s["__key__"]) for s in raw_samples(urls, shuffle=50, seed=seed)]
    assert max(window[:32]) < 50 + 32
