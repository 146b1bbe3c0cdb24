"""A hostile catalog Parquet is refused in one sentence before anything is built from it. On main: a
null or integer image_uri killed `serve` with a traceback (index and search took it), a method
named `d/../../pwned` made `index` write a FAISS file outside the catalog's folder, a 168 KB zstd
file holding a 1.9 GB caption took 8.3 GB of memory, and a catalog of 0 rows gave a traceback."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_helpers import unit_vectors, write_synthetic_catalog
from clip_arena.core.errors import UserError
from clip_arena.index.catalog import CatalogError, check_method_name, numpy_to_fixed_list, read_catalog
from cli_runner import run_cli
from conftest import with_project


def _table(n=4, uri=None, method="base", caption=None):
    return pa.table({
        "image_id": pa.array([f"i{k}" for k in range(n)], pa.string()),
        "image_uri": uri if uri is not None else pa.array([f"{k}.png" for k in range(n)], pa.string()),
        "caption": caption if caption is not None else pa.array(["a"] * n, pa.string()),
        f"{method}_embedding": numpy_to_fixed_list(unit_vectors(n, 8)),
    })


@pytest.mark.parametrize("uri, message", [
    (pa.array([None, "1.png", "2.png", "3.png"], pa.string()), "Row 0: image_uri is missing or empty."),
    (pa.array([1, 2, 3, 4], pa.int64()), "Column 'image_uri' must hold strings, not int64."),
    (pa.array([None] * 4, pa.null()), "Column 'image_uri' must hold strings, not null."),
])
def test_an_image_uri_that_is_not_a_string_is_refused(tmp_path, uri, message):
    pq.write_table(_table(uri=uri), tmp_path / "c.parquet")
    with pytest.raises(CatalogError, match=message):
        read_catalog(tmp_path / "c.parquet")
    result = run_cli("serve", "--catalog", str(tmp_path / "c.parquet"), "--votes", str(tmp_path / "v.db"),
                     "--port", "1", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and message in result.stderr


def test_a_method_name_cannot_reach_outside_the_catalog_folder(tmp_path):
    (tmp_path / "cat").mkdir()
    pq.write_table(_table(method="d/../../pwned"), tmp_path / "cat" / "c.parquet")
    result = run_cli("index", "--catalog", str(tmp_path / "cat" / "c.parquet"), timeout=120)
    assert result.returncode == 2 and "Method name 'd/../../pwned' is not allowed" in result.stderr
    assert [p.name for p in tmp_path.rglob("*.faiss*")] == []


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=80))
def test_method_names_are_plain_words(name):
    try:
        assert check_method_name(name) == name
    except UserError:
        return
    assert "/" not in name and "\\" not in name and ".." not in name and name.strip() == name and len(name) <= 64


def test_a_zip_bomb_caption_is_refused_from_the_footer_in_bounded_memory(tmp_path):
    path = tmp_path / "bomb.parquet"
    caption = pa.array(["x" * (300 << 20)], pa.large_string())  # 300 MB that zstd packs into kilobytes
    pq.write_table(_table(n=1, caption=caption), path, compression="zstd")
    del caption
    assert path.stat().st_size < 1 << 20
    script = (
        "import resource, sys\n"
        "from clip_arena.index.catalog import read_catalog\n"
        "from clip_arena.core.errors import UserError\n"
        "used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (used + (200 << 20), resource.RLIM_INFINITY))\n"
        "try:\n"
        "    read_catalog(sys.argv[1])\n"
        "except UserError as err:\n"
        "    print(err)\n")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120,
                         env={**with_project(), "MALLOC_ARENA_MAX": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Column 'caption' holds 300 MB once decompressed for 1 rows" in out.stdout


def test_a_catalog_of_no_rows_is_one_sentence(tmp_path):
    pq.write_table(_table(n=0), tmp_path / "c.parquet")
    for command in (["index", "--catalog"], ["search", "--method", "base", "--query-id", "x", "--catalog"]):
        result = run_cli(*command, str(tmp_path / "c.parquet"), timeout=120)
        assert result.returncode == 2 and "The catalog has no rows." in result.stderr, result.stderr


def test_real_catalogs_still_read(tmp_path):
    write_synthetic_catalog(tmp_path / "c.parquet", n=2000, dim=512)
    catalog = read_catalog(tmp_path / "c.parquet")
    assert len(catalog) == 2000 and catalog.methods == ["base", "finetuned"]
    assert np.isclose(np.linalg.norm(catalog.embeddings("base")[0]), 1.0, atol=1e-3)
