"""prepare's shards: captions from the template, tar-safe keys, the count and size limits, and every field
read back by webdataset."""

import io
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from clip_arena.core.errors import UserError
from clip_arena.prepare.shards import (DEFAULT_TEMPLATE, caption, check_template, letterbox, sample, sample_key,
                                       write_shards)


@pytest.mark.parametrize("row, text", [
    ({"clean_title": "Oak table", "style": "rustic", "material": "oak", "object_type": "table", "colour": "brown"},
     "Oak table, rustic oak table in brown"),
    ({"clean_title": "Oak table", "style": "unknown", "material": "oak", "object_type": "table",
      "colour": "unknown"}, "Oak table, oak table"),  # "in unknown" goes, with its "in"
    ({"clean_title": "Lamp", "style": "unknown", "material": "unknown", "object_type": "unknown",
      "colour": "unknown"}, "Lamp"),
    ({"clean_title": "", "style": "modern", "material": None, "object_type": "sofa", "colour": "grey"},
     "modern sofa in grey"),
    ({"clean_title": "Lamp", "style": "unknown", "material": "unknown", "object_type": "unknown",
      "colour": "purple"}, "Lamp, purple"),  # no dangling "in purple"
    ({"clean_title": "", "style": None, "material": "", "object_type": "unknown", "colour": "red"}, "red"),
])
def test_captions_drop_unknown_parts_gracefully(row, text):
    assert caption(DEFAULT_TEMPLATE, row) == text


def test_a_template_naming_a_missing_column_is_refused_before_any_work():
    with pytest.raises(UserError, match=r"\{pattern\}.*does not have"):
        check_template("{clean_title} with {pattern}", ["clean_title", "colour"])
    with pytest.raises(UserError, match="not a valid template"):
        check_template("{clean_title", ["clean_title"])
    with pytest.raises(UserError, match="plain column names"):
        check_template("{clean_title!r}", ["clean_title"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=200), min_size=2, max_size=6, unique=True))
def test_keys_are_tar_safe_and_unique_whatever_the_ids(ids):
    keys = [sample_key(i) for i in ids]
    assert len(set(keys)) == len(keys)
    assert all(k and "." not in k and "/" not in k and len(k) <= 80 and k.isascii() for k in keys)


def test_images_are_letterboxed_to_the_model_input_without_cropping():
    tall = Image.new("RGB", (40, 200), (200, 0, 0))
    out = letterbox(tall, 64)
    assert out.size == (64, 64)
    assert out.getpixel((32, 32))[0] > 150 and out.getpixel((2, 32)) == (255, 255, 255)  # padded, not cropped


def _samples(n, side=96):
    rng = np.random.default_rng(0)
    for i in range(n):
        image = Image.fromarray(rng.integers(0, 255, (side, side, 3), np.uint8))  # noise: JPEG cannot shrink it
        row = {"image_id": f"id.{i}/x", "clean_title": f"chair {i}", "style": "modern", "material": "unknown",
               "object_type": "chair", "colour": "red", "colour_confidence": 0.91, "split": "train",
               "mini_train": i % 2 == 0, "score": float("nan")}
        yield sample(row, image, 64, DEFAULT_TEMPLATE)


def test_shards_keep_to_the_count_and_size_limits_and_read_back_with_every_field(tmp_path):
    import webdataset as wds

    one = len(next(iter(_samples(1)))["jpg"])
    limit = 64 * 1024
    shards = write_shards(_samples(23), tmp_path, max_count=8, max_size=limit)
    files = sorted(tmp_path.glob("shard-*.tar"))
    assert [s["name"] for s in shards] == [f.name for f in files] and files[0].name == "shard-000000.tar"
    assert sum(s["samples"] for s in shards) == 23 and all(s["samples"] <= 8 for s in shards)
    assert all(os.path.getsize(f) <= limit for f in files)
    assert one > 8 * 1024  # so that eight samples do not fit in 64 KB: the size limit, not the count, cut some shards
    assert any(s["samples"] < 8 for s in shards[:-1])
    got = list(wds.WebDataset([str(f) for f in files], shardshuffle=False))
    assert len(got) == 23
    first = got[0]
    assert set(first) >= {"__key__", "jpg", "txt", "json"}
    assert Image.open(io.BytesIO(first["jpg"])).size == (64, 64)
    assert first["txt"].decode() == "chair 0, modern chair in red"
    meta = json.loads(first["json"])
    assert meta["image_id"] == "id.0/x" and meta["colour_confidence"] == 0.91 and meta["score"] is None
    assert meta["mini_train"] is True


def test_the_same_rows_give_the_same_shard_bytes(tmp_path):
    a = write_shards(_samples(6), tmp_path / "a", max_count=4)
    b = write_shards(_samples(6), tmp_path / "b", max_count=4)
    assert [s["sha256"] for s in a] == [s["sha256"] for s in b]


def test_unusable_limits_are_refused(tmp_path):
    with pytest.raises(UserError, match="--shard-count"):
        write_shards([], tmp_path, max_count=0)
    with pytest.raises(UserError, match="--shard-size"):
        write_shards([], tmp_path, max_size=100)


@settings(max_examples=30, deadline=None)
@given(ids=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=60, unique=True), seed=st.integers(0, 9))
def test_shards_are_written_in_a_seeded_hash_order_that_adding_rows_does_not_reshuffle(ids, seed):
    from clip_arena.prepare.shards import in_shard_order

    rows = [{"image_id": i, "category": n % 3} for n, i in enumerate(ids)]
    order = [r["image_id"] for r in in_shard_order(rows, seed)]
    assert sorted(order) == sorted(ids)
    assert order == [r["image_id"] for r in in_shard_order(list(reversed(rows)), seed)]  # the CSV's order does not matter
    kept = [i for i in [r["image_id"] for r in in_shard_order(rows + [{"image_id": "\x00new"}], seed)] if i != "\x00new"]
    assert kept == order


def test_a_catalog_sorted_by_category_gives_shards_of_mixed_categories():
    """A streaming reader's shuffle buffer sees a window of the shards: sorted shards would feed it a
    category at a time (the demo's catalog is sorted by Unicode group)."""
    from clip_arena.prepare.shards import in_shard_order

    rows = [{"image_id": f"{c}-{i}", "category": c} for c in ("chairs", "lamps", "tables", "sofas") for i in range(50)]
    for seed in (0, 1):
        order = in_shard_order(rows, seed)
        first_shard = {r["category"] for r in order[:20]}
        assert len(first_shard) >= 3, first_shard
    assert in_shard_order(rows, 0) != in_shard_order(rows, 1)
