"""The app in hosted mode, through its HTTP API: who may vote, the storage banner, smaller uploads,
Finish that ends a session only, and votes that survive a kill -9 (the local disk lost or kept)."""

import json
import os
import signal
import sqlite3
import urllib.request

import pytest

from conftest import ROOT
from clip_arena.core.hosting import NOBODY, OAUTH, TYPED, annotator_name, identity, max_upload, storage_notice
from clip_arena.core.settings import Settings
from test_arena_serving import App, _client

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def apps():
    started = []

    def _start(cwd, *args, env=None):
        started.append(App(cwd, *args, env=env))
        return started[-1]

    yield _start
    for app in started:
        if app.proc.poll() is None:
            app.stop()


def _config(url) -> dict:
    with urllib.request.urlopen(url + "config", timeout=10) as r:
        return json.loads(r.read())


def _texts(config) -> str:
    return " ".join(str(c.get("props", {}).get("value", "")) for c in config["components"])


def _live(db):
    with sqlite3.connect(db) as conn:
        return {r[0]: r[1] for r in conn.execute("SELECT vote_id, undone_at FROM votes")}


def test_hosted_votes_survive_kill_9_with_the_disk_lost_or_kept(tmp_path, apps, arena_catalog):
    """Every acknowledged vote is in the folder (pushed at each vote): after kill -9 a new machine
    (empty disk) has them all, undo included; the old disk restarted counts none twice."""
    catalog, db = arena_catalog
    bucket = tmp_path / "bucket"
    args = ("--catalog", str(catalog), "--hosted", "--allow-anonymous", "--vote-target", str(bucket),
            "--push-minutes", "0", "--min-display-ms", "0")
    app = apps(tmp_path, "--votes", str(db), *args)
    assert "Votes are kept in the folder" in _texts(_config(app.url)) and "a restart loses none" in _texts(_config(app.url))
    client = _client(app.url)
    out = client.predict("ann", "all", api_name="/arena_start")
    for i in range(12):  # 10 test queries: the arena asks before repeating one
        out = client.predict(out[2], True, api_name=f"/arena_{('left', 'right', 'tie')[i % 3]}")
        if i == 9:
            assert out[0].startswith("**You have judged every test query (10)")
            out = client.predict(api_name="/arena_continue")
        assert out[0].startswith("Round ")
    out = client.predict(out[2], True, api_name="/arena_undo")
    acknowledged = _live(db)
    assert len(acknowledged) == 12 and sum(v is not None for v in acknowledged.values()) == 1
    app.proc.send_signal(signal.SIGKILL)
    app.proc.wait()

    fresh_db = tmp_path / "new-machine" / "votes.db"
    app2 = apps(tmp_path, "--votes", str(fresh_db), *args)  # a Space restart: the local disk is gone
    assert _live(fresh_db) == acknowledged
    client = _client(app2.url)
    out = client.predict("ann2", "all", api_name="/arena_start")
    client.predict(out[2], True, api_name="/arena_left")
    app2.proc.send_signal(signal.SIGKILL)
    app2.proc.wait()

    app3 = apps(tmp_path, "--votes", str(db), *args)  # the first machine's disk, kept
    votes = _live(db)
    assert len(votes) == 13 and set(acknowledged) < set(votes)  # the vote cast elsewhere arrived, none twice
    assert sum(v is not None for v in votes.values()) == 1
    app3.stop()


def test_hosted_rules_who_votes_banner_uploads_and_finish(tmp_path, apps, arena_catalog):
    catalog, db = arena_catalog
    env = {"SPACE_ID": "team/arena"}  # on a Space, no target, no sign-in, anonymous not allowed
    app = apps(tmp_path, "--catalog", str(catalog), "--votes", str(db), env=env)
    config = _config(app.url)
    assert "votes here are ephemeral" in _texts(config)
    assert config["max_file_size"] == 10 * 1024 * 1024
    client = _client(app.url)
    out = client.predict("somebody", "all", api_name="/arena_start")
    assert not str(out[0]).startswith("Round")  # no session: typed names are not taken here
    assert not _live(db)
    app.stop()

    app = apps(tmp_path, "--catalog", str(catalog), "--votes", str(db), "--allow-anonymous", env=env)
    client = _client(app.url)
    out = client.predict("somebody", "all", api_name="/arena_start")
    assert out[0].startswith("Round 1.")
    out = client.predict(out[2], True, api_name="/arena_left")
    out = client.predict(out[2], True, api_name="/arena_finish")
    assert "Session finished for **somebody**: 1 vote (" in out[0]
    assert _config(app.url)["components"]  # the server still answers after Finish
    assert _client(app.url).predict("other", "all", api_name="/arena_start")[0].startswith("Round 1.")


def test_the_hourly_cap_and_the_flag_through_the_app(tmp_path, apps, arena_catalog):
    catalog, db = arena_catalog
    bucket = tmp_path / "bucket"
    app = apps(tmp_path, "--catalog", str(catalog), "--votes", str(db), "--vote-target", str(bucket),
               "--push-minutes", "0", "--max-votes-per-hour", "2", "--min-display-ms", "600000")
    client = _client(app.url)
    out = client.predict("ann", "all", api_name="/arena_start")
    out = client.predict(out[2], True, api_name="/arena_left")
    assert "flagged for review" in out[1]  # the annotator is told, and the vote kept
    out = client.predict(out[2], True, api_name="/arena_right")
    with pytest.raises(Exception, match="You have cast 2 votes in the past hour"):
        client.predict(out[2], True, api_name="/arena_tie")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM vote_flags").fetchone()[0] == 2  # kept and flagged
    assert len(list(bucket.glob("flags-*.csv"))) == 2


def test_identity_rules(monkeypatch):
    class Profile:
        username = "hf-user"

    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("OAUTH_CLIENT_ID", raising=False)
    assert identity(Settings()) == TYPED  # locally, a typed name
    assert identity(Settings(hosted=True)) == NOBODY
    assert identity(Settings(hosted=True, allow_anonymous=True)) == TYPED
    assert identity(Settings(hosted=True, users_file="u.txt")) == "login"
    monkeypatch.setenv("SPACE_ID", "team/arena")
    assert identity(Settings()) == NOBODY
    monkeypatch.setenv("OAUTH_CLIENT_ID", "abc")  # hf_oauth: true in the Space's README
    assert identity(Settings(users_file="u.txt")) == OAUTH
    assert annotator_name(OAUTH, "typed name", None, Profile()) == "hf-user"  # the login name, not the typed one
    with pytest.raises(Exception, match="^Sign in with Hugging Face"):
        annotator_name(OAUTH, "typed name", None, None)
    with pytest.raises(Exception, match="only from signed-in annotators"):
        annotator_name(NOBODY, "typed", None, None)
    assert max_upload(Settings()) == "10mb"
    assert max_upload(Settings(max_upload="2mb")) == "2mb"


def test_storage_notice_says_where_how_much_and_when():
    from datetime import datetime, timedelta, timezone

    class Target:
        every_min, last_push, last_error = 5.0, None, None

        def describe(self):
            return "the dataset repo team/votes"

    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    t = Target()
    assert storage_notice(None, hosted=False) == ""
    assert "ephemeral" in storage_notice(None, hosted=True)
    text = storage_notice(t, hosted=True, now=now)
    assert "the dataset repo team/votes" in text and "lose up to the last 5 minutes" in text and "no push yet" in text
    t.last_push = now - timedelta(minutes=3)
    assert "last push 11:57 UTC (3 min ago)" in storage_notice(t, hosted=True, now=now)
    t.last_error = "401 Unauthorized"
    assert "the last push failed" in storage_notice(t, hosted=True, now=now)


def test_hosted_flag_turns_local_paths_off(monkeypatch, tmp_path):
    from clip_arena.analyzer.policy import configured_roots

    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("CLIP_ARENA_IMAGE_ROOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert configured_roots(Settings.from_env()) == [str(tmp_path)]
    assert configured_roots(Settings.from_env().with_overrides(hosted=True)) is None
    assert configured_roots(Settings.from_env().with_overrides(hosted=True, image_roots=["/srv/img"])) == ["/srv/img"]


def test_with_hf_oauth_the_arena_has_a_login_button_and_start_reads_the_profile(monkeypatch, arena_catalog):
    import inspect

    import gradio as gr

    from clip_arena import webapp as app

    catalog, db = arena_catalog
    import gradio.oauth

    # What a Space with hf_oauth: true sets (Gradio reads its OAuth settings when imported).
    for name, value in {"SPACE_ID": "team/arena", "SYSTEM": "spaces", "OAUTH_CLIENT_ID": "abc",
                        "OAUTH_CLIENT_SECRET": "secret", "OAUTH_SCOPES": "openid profile",
                        "OPENID_PROVIDER_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
        if hasattr(gradio.oauth, name):
            monkeypatch.setattr(gradio.oauth, name, value)
    demo = app.build_app(Settings(catalog=str(catalog), votes=str(db)))
    assert demo.expects_oauth  # a gr.LoginButton: Gradio adds the Hugging Face login routes
    start = next(fn for fn in demo.fns.values() if fn.api_name == "arena_start")
    params = inspect.signature(start.fn).parameters
    assert "OAuthProfile" in str(params["profile"].annotation)


def test_hosted_batches_are_capped_before_any_work(tmp_path, monkeypatch):
    from clip_arena.analyzer.batch_view import check_batch_rows
    from clip_arena.core.errors import UserError
    from clip_arena.core.hosting import max_batch_rows

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert max_batch_rows(Settings()) is None and max_batch_rows(Settings(hosted=True)) == 5000
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("image,caption\n" + "".join(f'"http://x/{i}.jpg","a, ""quoted""\nline {i}"\n'
                                                       for i in range(4)))
    check_batch_rows(str(csv_path), Settings(hosted=True, max_batch_rows=4))  # 4 rows (multi-line cells)
    check_batch_rows(str(csv_path), Settings())
    with pytest.raises(UserError, match="^This CSV has more than 3 rows, the most this server scores at once"):
        check_batch_rows(str(csv_path), Settings(hosted=True, max_batch_rows=3))


def test_a_clean_stop_pushes_what_the_interval_had_not_yet(tmp_path, apps, arena_catalog):
    """Pushes every 10 minutes; SIGTERM (what a Space restart sends) still leaves every vote in the folder."""
    catalog, db = arena_catalog
    bucket = tmp_path / "bucket"
    app = apps(tmp_path, "--catalog", str(catalog), "--votes", str(db), "--vote-target", str(bucket),
               "--push-minutes", "10")
    client = _client(app.url)
    out = client.predict("ann", "all", api_name="/arena_start")
    for _ in range(3):
        out = client.predict(out[2], True, api_name="/arena_left")
    assert not list(bucket.glob("votes-*.csv"))
    app.stop()  # SIGTERM
    from clip_arena.votes.store import VoteStore
    from clip_arena.votes.targets import FolderTarget, restore

    assert restore(VoteStore(tmp_path / "new" / "votes.db"), FolderTarget(bucket, tmp_path / "new" / "s"))["added"] == 3
