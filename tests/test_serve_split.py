"""`serve` on a catalog without a test split: it serves, and says at once where the arena's queries
come from and the command that keeps them apart from training."""

import pytest

from catalog_helpers import unit_vectors
from clip_arena.cli.main import main
from clip_arena.index.catalog import build_table, catalog_meta, write_catalog


@pytest.fixture
def no_launch(monkeypatch):
    from clip_arena import webapp as app

    launched = []
    monkeypatch.setattr(app, "launch", lambda settings, arena=None: launched.append(arena))
    return launched


def _catalog(path, split=None, n=12):
    columns = {"image_id": [f"img{i}" for i in range(n)], "image_uri": [f"images/{i}.png" for i in range(n)],
               "caption": [f"photo {i}" for i in range(n)]}
    if split is not None:
        columns["split"] = [split] * n
    specs = {"base": "demo:base", "finetuned": "demo:finetuned"}
    write_catalog(path, build_table(columns, {m: unit_vectors(n, 8, seed=k) for k, m in enumerate(specs)}),
                  catalog_meta(specs, {m: 8 for m in specs}))
    return path


@pytest.mark.parametrize("split, why, resplit", [(None, "no split column", ""),
                                                 ("train", "no test rows in its split", " --resplit")])
def test_serve_says_the_queries_are_every_row_and_how_to_set_a_test_split(tmp_path, capsys, no_launch, split, why,
                                                                          resplit):
    catalog = _catalog(tmp_path / "catalog.parquet", split)
    assert main(["serve", "--catalog", str(catalog), "--votes", str(tmp_path / "v.db"), "--model", "demo:base",
                 "--port", "7998"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "catalog:" in x)
    assert f"(12 rows, 12 arena queries drawn from every row, as the catalog has {why}" in line
    assert "training images are among them" in line
    assert (f"clip-arena embed --images DIR [--metadata CSV] --method base=demo:base --method "
            f"finetuned=demo:finetuned -o {catalog} --split 80/10/10{resplit}`") in line
    assert len(no_launch) == 1


def test_serve_says_nothing_more_when_the_catalog_has_test_rows(tmp_path, capsys, no_launch):
    catalog = _catalog(tmp_path / "catalog.parquet", "test")
    assert main(["serve", "--catalog", str(catalog), "--votes", str(tmp_path / "v.db"), "--model", "demo:base"]) == 0
    assert "(12 rows, 12 arena queries)" in capsys.readouterr().out
