"""`prepare --engine ray`: the local engine's catalog and shards, byte for byte; the shards read back by
Ray Data's read_webdataset.

A Ray start and both engines on one catalog cost 25-60 s on two cores, past the suite's budget for this
feature: the test runs with CLIP_ARENA_SLOW_TESTS=1 (and bench/bench_prepare.py --ray does the same check)."""

import importlib.util
import json
import os

import pandas as pd
import pytest

from clip_arena.prepare.pipeline import Options, Prepare
from test_prepare_pipeline import _raw_catalog

if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its settings when imported
    pytest.skip("the Ray extra is not installed: pip install -e '.[ray]'", allow_module_level=True)

if not os.environ.get("CLIP_ARENA_SLOW_TESTS"):
    pytest.skip("a Ray start costs tens of seconds: run with CLIP_ARENA_SLOW_TESTS=1", allow_module_level=True)

from clip_arena.engines.ray_runtime import RayOptions, ray_session  # noqa: E402
from clip_arena.prepare.ray_engine import RayEngine  # noqa: E402


def test_prepare_on_ray_writes_the_local_engines_catalog_and_shards(tmp_path):
    raw = _raw_catalog(tmp_path)
    (tmp_path / "vocab.yaml").write_text("colour: [red, green, blue]\nobject_type: [chair, table]\n")
    common = dict(csv=raw, model="demo:base", device="cpu", part_rows=4, split="60/20/20", shard_count=3,
                  vocabulary=str(tmp_path / "vocab.yaml"), template="{clean_title}, {object_type} in {colour}")
    Prepare(Options(out=tmp_path / "local", **common), progress=lambda *a: None).run()
    with ray_session(RayOptions(), num_cpus=2) as ray:
        engine = RayEngine(RayOptions(part_rows=4))
        summary = Prepare(Options(out=tmp_path / "ray", engine=engine, **common), progress=lambda *a: None).run()
        assert set(summary["stages"].values()) == {"done"}
        local = json.loads((tmp_path / "local" / "manifest.json").read_text())
        on_ray = json.loads((tmp_path / "ray" / "manifest.json").read_text())
        assert local["splits"] == on_ray["splits"]  # the same shards, sample counts and sha256 checksums
        a = pd.read_parquet(tmp_path / "local" / "catalog.parquet")
        b = pd.read_parquet(tmp_path / "ray" / "catalog.parquet")
        pd.testing.assert_frame_equal(a.drop(columns="image_uri"), b.drop(columns="image_uri"))
        files = sorted(str(p) for p in (tmp_path / "ray" / "shards" / "train").glob("shard-*.tar"))
        rows = ray.data.read_webdataset(files, decoder=None).take_all()
        assert len(rows) == local["counts"]["train"]
        assert {"__key__", "jpg", "txt", "json"} <= set(rows[0])
        keys = {json.loads(r["json"])["image_id"] for r in rows}
        assert keys == set(a.loc[a["split"] == "train", "image_id"])
