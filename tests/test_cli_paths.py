"""A path typed as a command's argument is the user's to read, wherever it is, ~ expanded (issue #21);
data from elsewhere (CSV cells, the browser, hosted) keeps the image roots."""

import json
import os
import tempfile

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from PIL import Image

from clip_arena.analyzer.policy import BROWSER, ImagePolicy
from clip_arena.cli.main import main
from clip_arena.core.errors import ImageLoadError
from clip_arena.core.settings import DEFAULT_CATALOG, Settings


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder with ~/Pictures/cat.png, and the command run from another folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLIP_ARENA_IMAGE_ROOTS", raising=False)
    (tmp_path / "home" / "Pictures").mkdir(parents=True)
    Image.new("RGB", (64, 64), "red").save(tmp_path / "home" / "Pictures" / "cat.png")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "home"


def _run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_similarity_reads_the_file_the_user_names(home, capsys, tiny_open_clip_spec):
    for image in ("~/Pictures/cat.png", str(home / "Pictures" / "cat.png")):  # ~ as a quoted argument keeps it
        code, out, err = _run(capsys, "similarity", "--image", image, "--text", "a cat", "--model",
                              tiny_open_clip_spec, "--json")
        assert code == 0, err
        assert json.loads(out)["results"][0]["text"] == "a cat"


def test_analyze_and_search_read_the_file_the_user_names(home, capsys, tiny_open_clip_spec):
    code, out, err = _run(capsys, "analyze", "--image", "~/Pictures/cat.png", "--section", "image_properties",
                          "--model", tiny_open_clip_spec, "--json")
    assert code == 0, err
    assert json.loads(out)["sections"]["image_properties"]["status"] == "ok"
    code, out, err = _run(capsys, "search", "--catalog", str(DEFAULT_CATALOG), "--method", "base", "--image",
                          "~/Pictures/cat.png", "-k", "2", "--json")
    assert code == 0, err
    assert len(json.loads(out)["results"]) == 2


def test_a_missing_file_is_named_in_one_sentence(home, capsys, tiny_open_clip_spec):
    code, _, err = _run(capsys, "similarity", "--image", "~/Pictures/dog.png", "--text", "x", "--model",
                        tiny_open_clip_spec)
    assert code == 2 and "dog.png does not exist" in err and "allowed image folders" not in err
    code, _, err = _run(capsys, "similarity", "--image", "not a url at all", "--text", "x", "--model",
                        tiny_open_clip_spec)
    assert code == 2 and "is neither an image URL" in err and "Traceback" not in err


def test_image_root_given_on_the_command_line_still_confines(home, capsys, tiny_open_clip_spec, tmp_path):
    code, _, err = _run(capsys, "similarity", "--image", "~/Pictures/cat.png", "--image-root", str(tmp_path / "work"),
                        "--text", "x", "--model", tiny_open_clip_spec)
    assert code == 2 and "outside the allowed image folders" in err and "--image-root" in err


def test_only_regular_files_even_when_named(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    policy = ImagePolicy.for_cli(Settings())
    for source in ("/dev/zero", str(tmp_path / "pipe.png"), str(tmp_path)):
        with pytest.raises(ImageLoadError) as info:
            policy.load(source)
        assert info.value.kind == "not_a_file", source  # no read, no hang


def test_data_from_elsewhere_keeps_the_roots(home, tmp_path, monkeypatch):
    """CSV cells, the browser and a hosted server: ~ is not expanded and the roots hold."""
    root = tmp_path / "work"
    for policy in (ImagePolicy((str(root),)), ImagePolicy((str(root),), audience=BROWSER)):  # score's rows, a tab
        for cell in ("~/Pictures/cat.png", str(home / "Pictures" / "cat.png"), "../home/Pictures/cat.png"):
            with pytest.raises(ImageLoadError) as info:
                policy.load(cell)
            assert info.value.kind in {"outside_roots", "not_found"}, cell
    monkeypatch.setenv("SPACE_ID", "someone/clip-arena")
    with pytest.raises(ImageLoadError) as info:
        ImagePolicy.for_server(Settings.from_env()).load(str(home / "Pictures" / "cat.png"))
    assert info.value.kind == "local_path_refused"


def test_score_still_reads_csv_cells_only_under_the_csv_folder(home, capsys, tiny_open_clip_spec, tmp_path):
    src = tmp_path / "work" / "in.csv"
    src.write_text("image,caption\n~/Pictures/cat.png,a cat\n" + f"{home / 'Pictures' / 'cat.png'},a cat\n")
    code, _, err = _run(capsys, "score", str(src), "-o", str(tmp_path / "out.csv"), "--model", tiny_open_clip_spec)
    assert code == 0, err
    import csv

    errors = [row["error"] for row in csv.DictReader(open(tmp_path / "out.csv", newline=""))]
    assert all(e.startswith(("not_found", "outside_roots")) for e in errors), errors


@given(st.text(max_size=80))
@hsettings(max_examples=150, deadline=None)
def test_whatever_is_typed_is_read_or_refused_in_one_error(text):
    """No traceback whatever the argument holds (NUL bytes, lone surrogates, '~user', folders)."""
    with tempfile.TemporaryDirectory() as empty:
        cwd = os.getcwd()
        os.chdir(empty)
        try:
            ImagePolicy.for_cli(Settings()).load(text)
        except ImageLoadError:
            pass
        finally:
            os.chdir(cwd)
