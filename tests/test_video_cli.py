"""`clip-arena analyze --video` as a user runs it: the JSON contract, readable text, one-line errors."""

import json

from tests.cli_runner import run_cli
from tests.video_helpers import Shot, write_clip

CONTRACT = ("duration_s", "fps", "shots", "cuts_per_second", "text_seen", "loudness_lufs", "alignment", "rubric")


def test_analyze_video_json_contract_and_text_output(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", [Shot(1.0, (200, 30, 30)), Shot(1.0, (30, 30, 200), text="ACME")],
                      fps=10, tone_hz=440)
    done = run_cli("analyze", "--video", str(clip.path), "--text", "Acme sale", "--brand", "Acme",
                   "--model", "demo:finetuned", "--offline", "--json", "--frames", str(tmp_path / "frames"),
                   cwd=str(tmp_path.parent))  # a path named on the command line is read wherever it is
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for sec in report["sections"].values():
        assert sec["status"] in {"ok", "degraded", "unavailable"} and "backend" in sec and "reason" in sec
    video = report["video"]
    assert all(key in video for key in CONTRACT)
    assert all({"start_s", "end_s"} <= set(s) for s in video["shots"]) and len(video["shots"]) == 2
    assert all({"text", "first_s"} <= set(t) for t in video["text_seen"])
    assert all({"time_s", "cosine"} <= set(p) for p in video["alignment"]) and video["alignment"]
    assert all({"passed", "evidence"} <= set(c) for c in video["rubric"])
    assert isinstance(video["loudness_lufs"], float)
    assert (tmp_path / "frames" / "contact_sheet.jpg").is_file()

    text = run_cli("analyze", "--video", str(clip.path), "--model", "demo:finetuned", "--offline")
    assert text.returncode == 0, text.stderr
    assert "shots: 2" in text.stdout and "rubric:" in text.stdout and "LUFS" in text.stdout
    assert "[n/a ] Branding" in text.stdout  # no --brand: not judged, and said so


def test_analyze_video_errors_are_one_sentence(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video at all")
    for args, message in ((["--video", str(tmp_path / "notes.mp4")], "is not a video file"),
                          (["--video", str(tmp_path / "none.mp4")], "does not exist"),
                          (["--video", "x.mp4", "--image", "x.png"], "not both"),
                          (["--image", "x.png", "--brand", "Acme"], "apply to a video")):
        done = run_cli("analyze", *args, "--offline")
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
