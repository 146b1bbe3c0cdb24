"""Batch CSV with a video column: a caption scored over a video's sampled frames (mean and max),
images and videos in one CSV, per-row errors for videos, and the image roots for video paths."""

import csv

import pytest
from PIL import Image

from clip_arena.analyzer.batch import BatchOptions, is_video_cell, score_csv
from clip_arena.analyzer.policy import BROWSER
from clip_arena.models import get_encoder
from tests.video_helpers import Shot, write_clip


@pytest.fixture(scope="module")
def encoder():
    return get_encoder("demo:base", "cpu", "fp32")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    # red for a second, then blue for a second: a caption about red fits the first half only
    write_clip(root / "red_then_blue.mp4", [Shot(1.0, (220, 20, 20)), Shot(1.0, (20, 20, 220))], fps=8, size=(96, 64))
    Image.new("RGB", (40, 40), (220, 20, 20)).save(root / "red.png")
    import av  # a red and a blue frame of the video as decoded, saved as images

    with av.open(str(root / "red_then_blue.mp4")) as container:
        frames = list(container.decode(video=0))
    frames[0].to_image().save(root / "red_frame.png")
    frames[-1].to_image().save(root / "blue_frame.png")
    (root / "notes.mp4").write_text("not a video at all")
    (root / "empty.webm").write_bytes(b"")
    return root


def score(tmp_path, folder, encoder, rows: str, **options) -> list[dict]:
    source = tmp_path / "in.csv"
    source.write_text("image,caption\n" + rows)
    out = tmp_path / "out.csv"
    report = score_csv(source, out, encoder, BatchOptions(image_roots=[str(folder)], **options))
    with open(out, newline="") as f:
        return report, list(csv.DictReader(f))


def test_a_video_row_gets_the_mean_and_the_best_frame(tmp_path, folder, encoder):
    report, rows = score(tmp_path, folder, encoder, "red_then_blue.mp4,a red square\nred_frame.png,a red square\n"
                                                    "blue_frame.png,a red square\nred_then_blue.mp4,\n")
    video, image, blue, no_caption = rows
    assert video["error"] == "" and int(video["frames"]) >= 2
    mean, best = float(video["cosine"]), float(video["cosine_max"])
    assert float(video["similarity"]) == pytest.approx((mean + 1) / 2, abs=1e-4)
    # Each sampled frame scores as the same picture saved as an image does: the best is the better of
    # the red and the blue frame, the mean lies between them (whichever colour the model prefers).
    red_cos, blue_cos = float(image["cosine"]), float(blue["cosine"])
    assert abs(red_cos - blue_cos) > 0.01  # the two halves differ, so the mean is below the best
    assert best == pytest.approx(max(red_cos, blue_cos), abs=0.01)
    assert min(red_cos, blue_cos) - 0.01 <= mean < best
    assert image["frames"] == "1" and image["cosine_max"] == image["cosine"]  # an image is one frame
    assert no_caption["error"].startswith("missing_caption:") and no_caption["cosine"] == ""
    assert (report.rows, report.scored) == (4, 3)


def test_bad_videos_are_their_rows_errors_in_one_sentence(tmp_path, folder, encoder):
    outside = tmp_path / "elsewhere.mp4"
    write_clip(outside, [Shot(0.5, (0, 200, 0))], fps=8, size=(64, 48))
    report, rows = score(tmp_path, folder, encoder,
                         f"notes.mp4,a\nempty.webm,b\nmissing.mkv,c\n{outside},d\nred.png,a red square\n")
    kinds = [r["error"].split(":", 1)[0] for r in rows]
    assert kinds == ["not_video", "empty", "not_found", "outside_roots", ""]
    assert all(r["cosine"] == "" for r in rows[:4]) and rows[4]["cosine"] != ""
    assert "not a video file" in rows[0]["error"] and "Traceback" not in "".join(r["error"] for r in rows)
    assert report.errors == {"not_video": 1, "empty": 1, "not_found": 1, "outside_roots": 1}


def test_no_image_roots_means_no_local_videos_either(tmp_path, folder, encoder):
    source = tmp_path / "in.csv"
    source.write_text(f"image,caption\n{folder / 'red_then_blue.mp4'},a red square\n")
    score_csv(source, tmp_path / "out.csv", encoder, BatchOptions(image_roots=None, audience=BROWSER))
    with open(tmp_path / "out.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["error"].startswith("local_path_refused:") and str(folder) not in row["error"]


@pytest.mark.parametrize("cell, video", [
    ("clip.mp4", True), ("a/b/Clip.MOV", True), ("https://cdn.example/ad.webm?sig=1#t=3", True),
    ("https://cdn.example/ad.mp4.png", False), ("https://cdn.example/watch?v=x.mp4", False),
    ("anim.gif", False), ("photo.jpg", False), ("", False), ("http://[::1", False), (None, False),
])
def test_which_cells_are_videos(cell, video):
    assert is_video_cell(cell) is video
