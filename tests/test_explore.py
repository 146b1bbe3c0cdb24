"""Explore: the catalog searched by a text or an image with each method's own model, and
`clip-arena search --text/--image`."""

import json

import pytest
from PIL import Image

from clip_arena.arena.explore_view import details_markdown, gallery_items, run_explore, summary_line
from clip_arena.core.errors import UserError
from clip_arena.core.settings import DEFAULT_CATALOG, Settings
from clip_arena.index.catalog import read_catalog
from clip_arena.index.explore import MAX_K, search_all, search_image, search_text
from clip_arena.index.search import Searcher


@pytest.fixture(scope="module")
def searcher():
    return Searcher.open(read_catalog(DEFAULT_CATALOG))


def subgroup_of(searcher, hits):
    sub = searcher.catalog.table.column("subcategory").to_pylist()
    return [sub[h.row] for h in hits]


def test_a_text_query_finds_its_subgroup_with_the_finetuned_method(searcher):
    hits = search_text(searcher, "finetuned", "grinning face with smiling eyes", k=8)
    assert len(hits) == 8 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    found = subgroup_of(searcher, hits)
    assert found[:4] == ["face-smiling"] * 4 and found.count("face-smiling") >= 5, found


def test_an_image_query_finds_itself_first(searcher):
    image = Image.open(DEFAULT_CATALOG.parent / "images" / "1F34E.webp")  # red apple
    for method in ("base", "finetuned"):
        hits = search_image(searcher, method, image, k=4)
        assert hits[0].image_id == "1F34E" and hits[0].score > 0.99


def test_every_method_answers_side_by_side(searcher):
    hits = search_all(searcher, ["base", "finetuned"], text="red apple", k=5)
    assert list(hits) == ["base", "finetuned"] and all(len(h) == 5 for h in hits.values())
    assert "**base**" in summary_line("red apple", hits) and "“red apple”" in summary_line("red apple", hits)


def test_gallery_items_are_pixels_with_scores_not_server_paths(searcher):
    hits = search_text(searcher, "finetuned", "red apple", k=3)
    items = gallery_items(searcher, hits)
    assert all(isinstance(img, Image.Image) and img.size == (72, 72) for img, _ in items)
    assert items[0][1].startswith(f"{hits[0].score:.3f} · ")


def test_details_show_the_metadata_of_an_opened_image(searcher):
    hit = search_text(searcher, "finetuned", "red apple", k=1)[0]
    text = details_markdown(searcher, "finetuned", 1, hit)
    row = searcher.catalog.frame().iloc[hit.row]
    assert f"`{hit.image_id}`" in text and row["subcategory"] in text and row["category"].replace("&", "&amp;") in text
    assert "image_uri" not in text


def test_view_loads_an_uploaded_image_safely(searcher, tmp_path):
    path = tmp_path / "up.png"
    Image.open(DEFAULT_CATALOG.parent / "images" / "1F600.webp").save(path)
    hits = run_explore(searcher, "", str(path), ["finetuned"], 2, Settings())
    assert hits["finetuned"][0].image_id == "1F600"
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(UserError):
        run_explore(searcher, "", str(tmp_path / "bad.png"), ["finetuned"], 2, Settings())


@pytest.mark.parametrize("kwargs, message", [
    ({"methods": [], "text": "a"}, "at least one method"),
    ({"methods": ["base"], "text": "  "}, "text or add an image"),
    ({"methods": ["nope"], "text": "a"}, "no method 'nope'"),
    ({"methods": ["base"], "text": "a", "k": 0}, f"between 1 and {MAX_K}"),
    ({"methods": ["base"], "text": "a", "k": MAX_K + 1}, f"between 1 and {MAX_K}"),
])
def test_bad_queries_are_one_sentence(searcher, kwargs, message):
    with pytest.raises(UserError, match=message):
        search_all(searcher, **kwargs)


def test_a_catalog_without_model_specs_says_it_cannot_embed_queries(tmp_path):
    import numpy as np

    from clip_arena.index.catalog import build_table, write_catalog

    vecs = np.eye(3, 4, dtype=np.float32)
    path = tmp_path / "c.parquet"
    write_catalog(path, build_table({"image_id": ["a", "b", "c"], "image_uri": ["a", "b", "c"]}, {"m": vecs}),
                  {"methods": {}})
    with pytest.raises(UserError, match="does not say which model made method 'm'"):
        search_text(Searcher.open(read_catalog(path)), "m", "anything")


def run_cli(capsys, *args):
    from clip_arena.cli.main import main

    code = main(["search", "--catalog", str(DEFAULT_CATALOG), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_search_by_text_and_by_image(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "--method", "finetuned", "--text", "red apple", "-k", "3", "--json")
    payload = json.loads(out)
    assert code == 0 and payload["method"] == "finetuned" and payload["query_text"] == "red apple"
    assert len(payload["results"]) == 3 and set(payload["results"][0]) == {"image_id", "score"}
    code, out, _ = run_cli(capsys, "--method", "base", "--image", str(DEFAULT_CATALOG.parent / "images" / "1F34E.webp"),
                           "--image-root", str(DEFAULT_CATALOG.parent), "--json")
    assert code == 0 and json.loads(out)["results"][0]["image_id"] == "1F34E"
    code, out, _ = run_cli(capsys, "--method", "base", "--query-id", "1F34E", "--json")
    assert code == 0 and "1F34E" not in [r["image_id"] for r in json.loads(out)["results"]]


def test_cli_search_needs_exactly_one_query(capsys):
    with pytest.raises(SystemExit) as raised:
        run_cli(capsys, "--method", "base", "--text", "a", "--query-id", "1F34E")
    assert raised.value.code != 0
    with pytest.raises(SystemExit):
        run_cli(capsys, "--method", "base")


def test_cli_search_bad_image_is_one_sentence(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--method", "base", "--image", str(tmp_path / "missing.png"))
    assert code != 0 and "Traceback" not in err and err.strip().count("\n") == 0


def test_cli_search_by_image_reads_the_named_file_unless_image_root_confines_it(capsys, tmp_path, monkeypatch):
    """As every command: the file the user names is theirs to read; --image-root, when given, confines it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLIP_ARENA_IMAGE_ROOTS", raising=False)
    apple = str(DEFAULT_CATALOG.parent / "images" / "1F34E.webp")
    code, out, _ = run_cli(capsys, "--method", "base", "--image", apple, "--json")
    assert code == 0 and json.loads(out)["results"][0]["image_id"] == "1F34E"
    code, _, err = run_cli(capsys, "--method", "base", "--image", apple, "--image-root", str(tmp_path))
    assert code != 0 and "--image-root" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "--method", "base", "--image", "/etc/passwd", "--image-root", str(tmp_path))
    assert code != 0 and "not an image" not in err  # refused before it is read


def _api_names(settings):
    from clip_arena import webapp as app

    demo = app.build_app(settings)
    return {fn.api_name for fn in demo.fns.values()}


@pytest.mark.parametrize("overrides, shown", [
    ({}, True),  # the owner alone, locally
    ({"auth": "ann:secret"}, False),  # annotators sign in: a search would tell them the sides
    ({"hosted": True, "allow_anonymous": True}, False),
    ({"auth": "ann:secret", "explore": True}, True),  # --explore: the owner's choice
])
def test_explore_is_off_where_annotators_vote_unless_asked_for(tmp_path, overrides, shown, monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    settings = Settings(catalog=str(DEFAULT_CATALOG), votes=str(tmp_path / "v.db"), **overrides)
    names = _api_names(settings)
    assert ("on_search" in names) is shown
