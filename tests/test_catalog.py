"""Catalog schema: round trip, file metadata, and every validation error naming its culprit."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog_helpers import unit_vectors, write_synthetic_catalog
from clip_arena.index.catalog import CatalogError, build_table, read_catalog, validate


def test_round_trip_with_metadata(tmp_path):
    vectors = write_synthetic_catalog(tmp_path / "c.parquet", n=50, dim=8)
    cat = read_catalog(tmp_path / "c.parquet")
    assert cat.methods == ["base", "finetuned"] and len(cat) == 50
    np.testing.assert_array_equal(cat.embeddings("base"), vectors["base"])
    assert cat.meta["methods"]["base"]["spec"] == "test:base" and cat.meta["methods"]["base"]["dim"] == 8
    assert "created_at" in cat.meta["methods"]["finetuned"] and cat.meta["version"]
    assert cat.metadata_columns() == ["category"]
    assert cat.resolve_uri("images/a.png") == str(tmp_path / "images/a.png")
    assert cat.resolve_uri("https://x.org/a.png") == "https://x.org/a.png"


def test_float16_storage(tmp_path):
    vectors = write_synthetic_catalog(tmp_path / "c.parquet", n=30, dim=8, dtype="float16")
    cat = read_catalog(tmp_path / "c.parquet")
    assert cat.table.schema.field("base_embedding").type.value_type == pa.float16()
    np.testing.assert_allclose(cat.embeddings("base"), vectors["base"], atol=2e-3)


def _table(**overrides):
    n = 4
    cols = {"image_id": ["a", "b", "c", "d"], "image_uri": ["a.png", "b.png", "c.png", "d.png"]}
    arrays = {k: pa.array(v) for k, v in cols.items()}
    arrays["base_embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(unit_vectors(n, 3).ravel()), 3)
    arrays.update(overrides)
    return pa.table(arrays)


def _vectors(v):
    return pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(v, np.float32).ravel()), 3)


@pytest.mark.parametrize("overrides,message", [
    ({"image_id": pa.array(["a", "b", "a", "d"])}, "Row 2: image_id 'a' is a duplicate of row 0"),
    ({"image_id": pa.array(["a", "", "c", "d"])}, "Row 1: image_id is missing or empty"),
    ({"image_id": pa.array(["a", "b", None, "d"])}, "Row 2: image_id is missing or empty"),
    ({"image_id": pa.array([1, 2, 3, 4])}, "must hold strings"),
    ({"base_embedding": pa.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0], [0, 1.0, 0]])}, "ragged: row 2 has 2 values"),
    ({"base_embedding": pa.array([[1.0, 0, 0]] * 4)}, "variable list"),
    ({"base_embedding": _vectors([[1, 0, 0], [0, 1, 0], [np.nan, 0, 0], [0, 0, 1]])}, "Row 2: base_embedding contains NaN"),
    ({"base_embedding": _vectors([[1, 0, 0], [0, 2, 0], [0, 1, 0], [0, 0, 1]])}, "Row 1: base_embedding is not L2-normalised"),
])
def test_validation_errors_name_the_culprit(overrides, message):
    with pytest.raises(CatalogError, match=message.replace("(", r"\(")):
        validate(_table(**overrides))


def test_missing_columns(tmp_path):
    with pytest.raises(CatalogError, match="no 'image_id' column"):
        validate(_table().drop(["image_id"]))
    with pytest.raises(CatalogError, match="no 'image_uri' column"):
        validate(_table().drop(["image_uri"]))
    with pytest.raises(CatalogError, match="no <method>_embedding column"):
        validate(_table().drop(["base_embedding"]))


def test_wrong_dimension_against_file_metadata(tmp_path):
    with pytest.raises(CatalogError, match="dimension 3 but the file says 512"):
        validate(_table(), {"methods": {"base": {"dim": 512}}})


def test_unreadable_files(tmp_path):
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(CatalogError, match="not a readable Parquet file"):
        read_catalog(tmp_path / "x.parquet")
    with pytest.raises(CatalogError, match="does not exist"):
        read_catalog(tmp_path / "none.parquet")


def test_bad_file_is_reported_on_read(tmp_path):
    table = build_table({"image_id": ["a", "a"], "image_uri": ["a", "b"]}, {"base": unit_vectors(2, 4)})
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(CatalogError, match="duplicate"):
        read_catalog(tmp_path / "dup.parquet")
