"""The running app, through its HTTP API: what the file routes serve, and a vote soak with a restart."""

import os
import random
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, free_port, wait_http

DEMO = ROOT / "assets" / "demo" / "catalog.parquet"


class App:
    """`python app.py ARGS` on a free port, stoppable mid-test (to restart it)."""

    def __init__(self, cwd: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(cwd / f"server-{self.port}.log", "w+")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(self.port), *args],
                                     cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})})
        try:
            wait_http(self.url, proc=self.proc)
        except Exception:
            self.stop()
            self.log.seek(0)
            raise RuntimeError(f"app did not start; its log:\n{self.log.read()}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def apps():
    started = []

    def _start(cwd, *args):
        started.append(App(cwd, *args))
        return started[-1]

    yield _start
    for app in started:
        if app.proc.poll() is None:
            app.stop()


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def _client(url, **kwargs):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, **kwargs)


# -- what reaches the browser -------------------------------------------------------------------
def test_only_the_images_a_round_shows_can_be_fetched(tmp_path, apps):
    """On main the catalog's whole folder was served: its Parquet (both methods' embeddings),
    FAISS files and a votes.db beside it could be downloaded, and the blind broken."""
    from catalog_helpers import write_image_catalog
    from clip_arena.index.catalog import read_catalog
    from clip_arena.index.vector_index import index_paths, load_or_build

    catalog_path = write_image_catalog(tmp_path)
    catalog = read_catalog(catalog_path)
    for method in catalog.methods:
        load_or_build(catalog, method, kind="flat")
    (tmp_path / "notes.txt").write_text("private")
    # A catalog row pointing at something that is not an image never serves it either.
    db = tmp_path / "votes.db"
    app = apps(tmp_path, "--catalog", str(catalog_path), "--votes", str(db))
    client = _client(app.url)
    out = client.predict("tester", "all", api_name="/arena_start")
    status, _, round_id, query, left, right = out[:6]
    assert status.startswith("Round 1.")
    shown = [query] + [item["image"] for item in left + right]
    assert len(shown) == 9
    sources = {p.read_bytes() for p in (tmp_path / "images").iterdir()}
    for item in shown:  # the round's images load, and are the catalog's own bytes
        code, body = _get(item["url"])
        assert code == 200 and body in sources
    client.predict(round_id, True, api_name="/arena_left")  # a vote: votes.db now holds rows

    secrets = [catalog_path, *index_paths(catalog_path, catalog.methods[0]), db, tmp_path / "notes.txt",
               tmp_path / "images" / "0.png"]  # an image not shown in a round is not served either
    assert all(p.exists() for p in secrets)
    image_dir = Path(query["path"]).parent
    routes = ["gradio_api/file={}", "gradio_api/file/{}", "file={}", "file/{}", "static/{}", "assets/{}",
              "svelte/{}", "gradio_api/proxy={}"]
    for secret in secrets:
        names = {str(secret), os.path.relpath(secret, tmp_path),  # absolute, and relative to the app's folder
                 f"{image_dir}/../../../{os.path.relpath(secret, '/')}",  # out of the served folder
                 os.path.relpath(secret, image_dir)}
        for route in routes:
            for name in names:
                for quoted in (name, urllib.parse.quote(name, safe="")):
                    code, body = _get(app.url + route.format(quoted))
                    assert code != 200 or secret.read_bytes() not in body, f"{route.format(name)} served {secret}"


# -- the soak -------------------------------------------------------------------------------------
CHOICES = ("left", "right", "tie", "both_bad")


def _annotate(url, category, votes, seed, tally, errors, auth=None):
    """Vote `votes` times, with a skip now and then and an undo (then a re-vote) now and then."""
    rng = random.Random(seed)
    try:
        client = _client(url, auth=auth)
        typed = "someone else" if auth else f"ann{seed}"  # signed in, the login name counts
        out = client.predict(typed, category, api_name="/arena_start")
        tally["sessions"].append(client.session_hash)
        round_id, cast = out[2], 0
        while cast < votes:
            roll = rng.random()
            if roll < 0.08:
                out = client.predict(round_id, True, api_name="/arena_skip")
            elif roll < 0.16 and cast:
                out = client.predict(round_id, True, api_name="/arena_undo")
                assert "Vote withdrawn" in out[1], out
                tally["undos"] += 1
            else:
                out = client.predict(round_id, rng.random() < 0.5, api_name=f"/arena_{rng.choice(CHOICES)}")
                cast += 1
                tally["votes"] += 1
            if out[0].startswith("**You have judged"):  # the category is covered: go on, as asked
                assert not out[2], out[:3]
                out = client.predict(api_name="/arena_continue")
                tally["continued"] += 1
            assert out[0].startswith("Round ") and out[2] and out[2] != round_id, out[:3]
            round_id = out[2]
    except Exception as err:  # noqa: BLE001 - reported by the test
        errors.append(repr(err))


def _run_sessions(url, plan, tally, auth=None):
    errors = []
    threads = [threading.Thread(target=_annotate, args=(url, cat, n, seed, tally, errors, auth and auth[seed]))
               for seed, (cat, n) in plan.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_soak_500_votes_with_undo_skip_categories_and_a_restart(tmp_path, apps):
    """On main: votes failed for good within a few rounds of the Activities and Animals & Nature
    categories, session ids were Gradio's session hashes, and with --auth every annotator was the same."""
    db = tmp_path / "votes.db"
    tally = {"votes": 0, "undos": 0, "sessions": [], "continued": 0}
    app = apps(tmp_path, "--catalog", str(DEMO), "--votes", str(db))
    _run_sessions(app.url, {0: ("all", 70), 1: ("Activities", 60), 2: ("Animals & Nature", 60),
                            3: ("Flags", 60)}, tally)
    app.stop()
    # A restart, now with a users file: the login name is the annotator.
    from clip_arena.core.auth import hash_password

    (tmp_path / "users.txt").write_text(f"# annotators\nann4:plain-pass\nann5:{hash_password('s3cret', 1000)}\n"
                                        "ann6:third\nann7:fourth\n")
    app = apps(tmp_path, "--catalog", str(DEMO), "--votes", str(db), "--users", str(tmp_path / "users.txt"))
    logins = {4: ("ann4", "plain-pass"), 5: ("ann5", "s3cret"), 6: ("ann6", "third"), 7: ("ann7", "fourth")}
    _run_sessions(app.url, {4: ("Activities", 65), 5: ("all", 65), 6: ("Animals & Nature", 60), 7: ("Symbols", 60)},
                  tally, auth=logins)
    with pytest.raises(Exception):
        _client(app.url, auth=("ann5", "wrong"))

    assert tally["votes"] == 500 and tally["continued"] >= 3  # Activities (13 queries) and others ran out
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        votes = [dict(r) for r in conn.execute("SELECT * FROM votes")]
        rounds = {r["round_id"]: dict(r) for r in conn.execute("SELECT * FROM rounds")}
    live = [v for v in votes if v["undone_at"] is None]
    assert len(votes) == tally["votes"] and len(live) == tally["votes"] - tally["undos"]
    assert len({v["round_id"] for v in votes}) == len(votes)  # no round with two votes
    for v in votes:  # each vote on a round shown to its own session, and marked voted
        assert rounds[v["round_id"]]["session_id"] == v["session_id"] and rounds[v["round_id"]]["status"] == "voted"
    auto = Counter((r["query_id"], tuple(sorted((r["method_left"], r["method_right"])))) for r in rounds.values()
                   if r["status"] == "auto_skipped")
    # each identical-list round recorded once, restart or not; the demo's models may now agree on no
    # query at all (test_arena's synthetic catalog makes sure such rounds occur across a restart)
    assert max(auto.values(), default=1) == 1
    sessions = {v["session_id"] for v in votes}
    assert len(sessions) == 8 and not sessions & set(tally["sessions"])  # server-made, not Gradio's hashes
    annotators = Counter(v["annotator"] for v in votes)
    assert set(annotators) == {f"ann{i}" for i in range(8)}
