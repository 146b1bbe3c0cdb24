"""A catalog made with the user's own model folder, typed as a relative path, loads from any folder;
a missing model file or folder is named (issue #21)."""

import json
import shutil

import pytest
from hypothesis import given, strategies as st
from PIL import Image

from clip_arena.cli.main import main
from clip_arena.core.errors import ModelLoadError
from clip_arena.core.settings import ASSETS_DIR
from clip_arena.index.catalog import build_table, catalog_meta, read_catalog, write_catalog
from clip_arena.models.spec import ModelSpec, absolute_spec, parse_spec, resolve_saved_spec

DEMO_MODEL = ASSETS_DIR / "models" / "demo_finetuned"
RELATIVE = "open_clip:local-dir:runs/ft2/model"


@pytest.fixture
def project(tmp_path):
    """A user's folder: their fine-tuned model in runs/ft2/model and a few photos."""
    proj = tmp_path / "proj"
    shutil.copytree(DEMO_MODEL, proj / "runs" / "ft2" / "model")
    (proj / "photos").mkdir()
    for i, colour in enumerate(("red", "green", "blue")):
        Image.new("RGB", (40, 40), colour).save(proj / "photos" / f"{i}.png")
    (tmp_path / "elsewhere").mkdir()
    return proj


def _search(capsys, catalog, *extra):
    code = main(["search", "--catalog", str(catalog), "--method", "ft", "--text", "red", "-k", "2", "--json", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _embed(capsys, catalog):
    code = main(["embed", "--images", "photos", "--method", f"ft={RELATIVE}", "-o", str(catalog), "--workers", "0"])
    capsys.readouterr()
    assert code == 0


def test_a_catalog_made_with_a_relative_model_folder_searches_from_any_folder(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    _embed(capsys, "cat/catalog.parquet")
    spec = read_catalog(project / "cat" / "catalog.parquet").meta["methods"]["ft"]["spec"]
    assert spec == f"open_clip:local-dir:{project / 'runs' / 'ft2' / 'model'}"  # absolute: loads from anywhere
    monkeypatch.chdir(project.parent / "elsewhere")
    code, out, err = _search(capsys, project / "cat" / "catalog.parquet")
    assert code == 0, err
    assert len(json.loads(out)["results"]) == 2
    monkeypatch.chdir(project)  # growing it again with the same typed spec is the same model
    _embed(capsys, "cat/catalog.parquet")


def _old_catalog(path, spec=RELATIVE):
    """A catalog as main wrote it: the spec as typed, relative to the folder embed ran in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    from catalog_helpers import unit_vectors

    table = build_table({"image_id": ["a", "b", "c"], "image_uri": ["a.png", "b.png", "c.png"]},
                        {"ft": unit_vectors(3, 64)})
    write_catalog(path, table, catalog_meta({"ft": spec}, {"ft": 64}))
    return path


def test_an_old_catalog_with_a_relative_spec_still_loads(project, capsys, monkeypatch):
    made_here = _old_catalog(project / "cat" / "catalog.parquet")
    monkeypatch.chdir(project)  # the folder it was made in
    assert _search(capsys, made_here)[0] == 0
    beside = _old_catalog(project / "catalog.parquet")  # the model path is relative to the catalog's folder too
    monkeypatch.chdir(project.parent / "elsewhere")
    assert _search(capsys, beside)[0] == 0
    code, _, err = _search(capsys, made_here)  # neither: the error names the folder and both places looked
    assert code == 2 and "runs/ft2/model" in err and str(project / "cat") in err and "elsewhere" in err
    assert "Traceback" not in err and err.strip().count("\n") == 0


def test_re_embedding_an_old_catalog_with_the_same_typed_spec_is_not_refused(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    from clip_arena.index.embed import build_catalog, items_from_folder
    from clip_arena.models import get_encoder

    catalog = project / "catalog.parquet"
    build_catalog(items_from_folder("photos"), {"ft": get_encoder(RELATIVE)}, catalog, workers=0, progress=False)
    table = read_catalog(catalog).table
    write_catalog(catalog, table, catalog_meta({"ft": RELATIVE}, {"ft": 64}))  # as main stored it
    Image.new("RGB", (40, 40), "white").save(project / "photos" / "3.png")
    report = build_catalog(items_from_folder("photos"), {"ft": get_encoder(RELATIVE)}, catalog, workers=0,
                           progress=False)
    assert report.added == 1 and report.kept == 3


def test_missing_model_files_are_named(project, capsys, monkeypatch):
    folder = project / "runs" / "ft2" / "model"
    catalog = _old_catalog(project / "catalog.parquet", f"open_clip:local-dir:{folder}")
    (folder / "open_clip_model.safetensors").rename(project / "moved.safetensors")
    code, _, err = _search(capsys, catalog)  # open_clip alone would answer with random weights
    assert code == 2 and str(folder) in err and "no weights file" in err
    (folder / "open_clip_config.json").unlink()
    code, _, err = _search(capsys, catalog)
    assert code == 2 and "open_clip_config.json" in err
    shutil.rmtree(folder)
    code, _, err = _search(capsys, catalog)
    assert code == 2 and f"{folder} for" in err and "does not exist" in err
    with pytest.raises(ModelLoadError, match="folder .*runs/x/y.* does not exist"):
        from clip_arena.models import get_encoder

        get_encoder(f"hf:{project}/runs/x/y")


# --- the spec strings themselves ------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["open_clip:ViT-B-32@openai", "hf:openai/clip-vit-base-patch32", "demo:base",
                                  "open_clip:hf-hub:timm/ViT-B-16-SigLIP", "hf:clip-model"])
def test_hub_names_and_tags_are_kept_as_typed(spec, tmp_path):
    assert absolute_spec(spec, tmp_path) == spec
    assert resolve_saved_spec(spec, tmp_path) == spec


def test_local_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert absolute_spec("open_clip:cfg.json@w.safetensors", tmp_path) == \
        f"open_clip:{tmp_path}/cfg.json@{tmp_path}/w.safetensors"
    assert absolute_spec("open_clip:ViT-B-32@~/w.pt", tmp_path) == f"open_clip:ViT-B-32@{tmp_path}/home/w.pt"
    assert absolute_spec("hf:./runs/model", tmp_path) == f"hf:{tmp_path}/runs/model"
    assert absolute_spec("hf:runs/ft/model", tmp_path) == f"hf:{tmp_path}/runs/ft/model"
    (tmp_path / "org" / "name").mkdir(parents=True)  # ORG/NAME is a folder only where one exists
    assert absolute_spec("hf:org/name", tmp_path) == f"hf:{tmp_path}/org/name"


def test_a_path_holding_at_signs_is_split_where_the_weights_start():
    assert parse_spec("open_clip:/u@h/cfg.json@/u@h/w.safetensors") == \
        ModelSpec("open_clip", "/u@h/cfg.json", "/u@h/w.safetensors")
    assert parse_spec("open_clip:ViT-B-32@/u@h/w.pt") == ModelSpec("open_clip", "ViT-B-32", "/u@h/w.pt")
    assert parse_spec("open_clip:local-dir:/u@h/model") == ModelSpec("open_clip", "local-dir:/u@h/model")
    assert parse_spec("open_clip:/u@h/cfg.json") == ModelSpec("open_clip", "/u@h/cfg.json")


_segment = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\:"), min_size=1,
                   max_size=8).filter(lambda s: s not in (".", "..") and s.strip() == s and ".json" not in s)
_folder = st.lists(_segment, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))


@given(folder=_folder, kind=st.sampled_from(["json", "dir", "arch"]))
def test_spec_paths_survive_absolute_and_parse(folder, kind):
    """Whatever a folder is called ('@', spaces, '.json' inside), the stored spec names the same files."""
    spec = {"json": f"open_clip:{folder}/c.json@{folder}/w.safetensors", "dir": f"open_clip:local-dir:{folder}",
            "arch": f"open_clip:ViT-B-32@{folder}/w.pt"}[kind]
    parsed = parse_spec(spec)
    assert absolute_spec(spec, "/base") == spec  # absolute already
    assert parse_spec(str(parsed)) == parsed
    if kind != "dir":
        assert parsed.pretrained.startswith(folder) and parsed.pretrained.endswith(("w.safetensors", "w.pt"))
