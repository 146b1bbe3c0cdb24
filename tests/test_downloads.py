"""Download folders: a fresh one per file, old ones removed so a long-running server stays small."""

import os
import time

from clip_arena.core import downloads


def test_old_download_folders_are_pruned_and_recent_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(downloads.tempfile, "gettempdir", lambda: str(tmp_path))
    old, recent = downloads.new_folder("batch"), downloads.new_folder("analysis")
    (old / "scored.csv").write_text("x")
    (recent / "analysis.json").write_text("{}")
    stale = time.time() - downloads.MAX_AGE_S - 60
    for path in (old, old / "scored.csv"):
        os.utime(path, (stale, stale))
    fresh = downloads.new_folder("batch")
    assert not old.exists() and recent.exists() and fresh.exists()
    assert fresh.parent == old.parent == tmp_path / downloads.ROOT_NAME and fresh.name.startswith("batch-")


def test_a_folder_with_a_file_still_being_written_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(downloads.tempfile, "gettempdir", lambda: str(tmp_path))
    running = downloads.new_folder("batch")
    (running / "scored.csv").write_text("rows so far")
    stale = time.time() - downloads.MAX_AGE_S - 60
    os.utime(running, (stale, stale))  # made long ago, but its file was written just now
    downloads.new_folder("batch")
    assert running.exists()
