"""The commands under hostile input: one sentence on stderr, never a traceback, no connection made."""

import csv
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from cli_runner import run_cli
from clip_arena.votes.store import ShownRound, VoteStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every one of these must be refused by the policy, before any connection is tried.
REFUSED = ["http://127.0.0.1/x.png", "http://localhost/x.png", "http://169.254.169.254/latest/meta-data",
           "http://[::1]/x.png", "http://[::127.0.0.1]/x.png", "http://[64:ff9b::a9fe:a9fe]/x.png",
           "http://[2002:a9fe:a9fe::1]/x.png", "http://[fec0::1]/x.png", "http://[::ffff:10.0.0.1]/x.png",
           "http://0x7f000001/x.png", "http://2130706433/x.png", "http://10.1.2.3/x.png", "http://0/x.png"]
PUBLIC = "http://93.184.216.34/x.png"  # a public address: in the namespace, connecting to it fails


def _one_sentence(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_score_in_a_network_namespace_refuses_without_connecting(tmp_path, tiny_open_clip_spec):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--net", "true"]).returncode != 0:
        pytest.skip("unshare --net is not permitted here (needs root or user namespaces)")
    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        w.writerows([(url, "x") for url in REFUSED + [PUBLIC]])
    proc = subprocess.run(["unshare", "--net", sys.executable, "-m", "clip_arena.cli.main", "score", str(src), "-o",
                           str(tmp_path / "out.csv"), "--model", tiny_open_clip_spec, "--offline"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    errors = {r["image"]: r["error"] for r in rows}
    for url in REFUSED:
        assert errors[url].startswith("private_address:"), (url, errors[url])
    # the control row shows what a connection attempt looks like here: not a refusal
    assert errors[PUBLIC].startswith("connection_failed:"), errors[PUBLIC]


def test_score_names_the_allowed_folder_and_the_option(tmp_path, tiny_open_clip_spec):
    (tmp_path / "data").mkdir()
    (tmp_path / "pics").mkdir()
    Image.new("RGB", (16, 16), "red").save(tmp_path / "pics" / "a.png")
    src = tmp_path / "data" / "in.csv"
    src.write_text(f"image,caption\n{tmp_path / 'pics' / 'a.png'},red\n")
    proc = run_cli("score", str(src), "-o", str(tmp_path / "out.csv"), "--model", tiny_open_clip_spec)
    error = next(csv.DictReader(open(tmp_path / "out.csv", newline="")))["error"]
    assert str(tmp_path / "data") in error and "--image-root" in error, error
    proc = run_cli("score", str(src), "-o", str(tmp_path / "out.csv"), "--model", tiny_open_clip_spec,
                   "--image-root", str(tmp_path / "pics"))
    assert proc.returncode == 0 and next(csv.DictReader(open(tmp_path / "out.csv", newline="")))["error"] == ""


@pytest.mark.parametrize("image", ["http://[::1", "/dev/zero"])
def test_similarity_bad_image_is_one_sentence(tmp_path, tiny_open_clip_spec, image):
    proc = run_cli("similarity", "--image", image, "--text", "x", "--model", tiny_open_clip_spec,
                   "--image-root", str(tmp_path))
    assert proc.returncode == 2
    _one_sentence(proc)


def test_similarity_reads_local_paths_only_under_the_roots(tmp_path, tiny_open_clip_spec):
    (tmp_path / "root").mkdir()
    Image.new("RGB", (16, 16), "red").save(tmp_path / "secret.png")
    proc = run_cli("similarity", "--image", str(tmp_path / "secret.png"), "--text", "x", "--model",
                   tiny_open_clip_spec, "--image-root", str(tmp_path / "root"))
    assert proc.returncode == 2 and "outside the allowed image folders" in proc.stderr
    _one_sentence(proc)


def test_latin1_vote_import_is_one_sentence(tmp_path):
    from clip_arena.votes.store import VOTE_COLUMNS

    path = tmp_path / "votes.csv"
    path.write_bytes((",".join(VOTE_COLUMNS) + "\n" + "v1,2024-01-01,Jos\xe9" + ",x" * 14 + "\n").encode("latin-1"))
    proc = run_cli("votes", "import", str(path), "--votes", str(tmp_path / "v.db"))
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr
    _one_sentence(proc)


def test_stats_into_a_closed_pipe_exits_quietly(tmp_path):
    store = VoteStore(tmp_path / "v.db")
    for i in range(30):
        r = ShownRound(f"r{i}", "alice", "s1", f"q{i}", "base", "finetuned", ["a"], ["b"], 0, "fp")
        store.record_round(r)
        store.record_vote(r, "right", 100)
    read, write = os.pipe()
    os.close(read)  # the reader (`head`) has already gone
    proc = subprocess.run([sys.executable, "-m", "clip_arena.cli.main", "stats", "--votes", str(tmp_path / "v.db"), "--json"],
                          stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT)
    os.close(write)
    assert proc.stderr == "" and proc.returncode == 141
