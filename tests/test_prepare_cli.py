"""`clip-arena prepare` on bad input: one sentence on stderr, exit 2, before any model loads."""

import shutil
import sys

import pytest

from clip_arena.cli.main import main
from conftest import ROOT


@pytest.fixture
def raw(tmp_path):
    (tmp_path / "raw.csv").write_text("sku,Title,Picture\na1,Chair,a1.jpg\n", encoding="utf-8")
    return tmp_path / "raw.csv"


@pytest.mark.parametrize("extra, words", [
    ([], "no image column"),
    (["--image-column", "Photo"], "--image-column 'Photo' is not a column"),
    (["--image-column", "Picture", "--split", "80/20"], "--split '80/20' must be three percentages"),
    (["--image-column", "Picture", "--caption-template", "{clean_title} {pattern}"], "{pattern}"),
    (["--image-column", "Picture", "--shard-count", "0"], "--shard-count 0"),
    (["--image-column", "Picture", "--attributes", "missing.yaml"], "could not be read"),
    (["--image-column", "Picture", "--stage", "shards"], "split stage has not finished"),
])
def test_bad_input_is_one_sentence_and_exit_2(raw, capsys, extra, words):
    assert main(["prepare", str(raw), "-o", str(raw.parent / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_or_empty_csv_and_a_bad_size_are_said_plainly(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("id,title,image\n")
    assert main(["prepare", str(tmp_path / "empty.csv"), "-o", str(tmp_path / "out")]) == 2
    assert "has a header but no rows" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prepare", str(tmp_path / "nope.csv"), "-o", "out", "--shard-size", "lots"])
    assert "is not a size in bytes" in capsys.readouterr().err


def test_the_vlm_tier_missing_is_one_sentence(raw, capsys, monkeypatch):
    shutil.copy(ROOT / "assets" / "demo" / "images" / "1F600.webp", raw.parent / "a1.jpg")
    monkeypatch.setitem(sys.modules, "clip_arena.prepare.vlm.tier", None)  # as if not installed
    code = main(["prepare", str(raw), "-o", str(raw.parent / "out"), "--image-column", "Picture", "--tier", "vlm"])
    err = capsys.readouterr().err
    assert code == 2 and "The VLM tier is not available" in err and "--tier offline" in err


def test_a_model_that_cannot_load_says_the_finished_stages_are_kept(raw, capsys):
    shutil.copy(ROOT / "assets" / "demo" / "images" / "1F600.webp", raw.parent / "a1.jpg")
    out = raw.parent / "out"
    code = main(["prepare", str(raw), "-o", str(out), "--image-column", "Picture", "--model", "demo:nonexistent"])
    err = capsys.readouterr().err.splitlines()[-1]  # after the clean stage's progress lines
    assert code == 2 and err.startswith("clip-arena prepare: error:") and "nonexistent" in err
    assert "add --resume" in err
    assert list((out / ".prepare").glob("clean-*/done.json"))  # the clean stage's work is on disk


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signalled_prepare_says_how_to_resume(raw, capsys, monkeypatch, signum):
    import os
    import signal
    import time

    from clip_arena.prepare.pipeline import Prepare

    def run(self, only=None):  # the signal arrives mid-stage
        os.kill(os.getpid(), getattr(signal, signum))
        time.sleep(5)

    def ignored(*_):  # the test's own handler: without prepare's, SIGTERM must not end the test run
        pass

    monkeypatch.setattr(Prepare, "run", run)
    before = signal.signal(signal.SIGTERM, ignored)
    # Ctrl-C as in a command's own process: Python's default handler (an earlier test in this process
    # may have put another one in place)
    before_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main(["prepare", str(raw), "-o", str(raw.parent / "out"), "--image-column", "Picture"])
        assert signal.getsignal(signal.SIGTERM) is ignored  # put back
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, before_int)
    err = capsys.readouterr().err
    assert code == 130 and "with --resume to go on" in err
