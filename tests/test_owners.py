"""Who sees what: where annotators sign in (or the app is hosted), Results, exports and Explore
belong to owners (--admins, or the Space's owner); an annotator who exported cannot cast a blind
vote on what the export revealed. On main any signed-in annotator could download every vote with
its sides (/lambda_10), undo and re-vote, and the re-vote was stored as blind."""

import types

import pytest

from catalog_helpers import write_synthetic_catalog
from clip_arena.arena.session import Arena
from clip_arena.core.hosting import OWNERS_ONLY, is_owner, owners
from clip_arena.core.settings import Settings
from clip_arena.index.catalog import read_catalog
from clip_arena.index.search import Searcher
from clip_arena.votes.store import VoteStore


def _request(username=None, oauth_user=None, expires_at=None):
    session = {"oauth_info": {"userinfo": {"preferred_username": oauth_user}, "expires_at": expires_at}} \
        if oauth_user else {}
    return types.SimpleNamespace(username=username, session=session)


def test_owners_are_the_admins_and_the_space_owner_signed_in(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    local = Settings()
    assert is_owner(local, _request())  # locally with typed names, the person at the keyboard
    logins = Settings(auth="alice:pw", admins=("alice",))
    assert is_owner(logins, _request("alice")) and not is_owner(logins, _request("bob"))
    assert not is_owner(logins, _request())  # nobody signed in
    monkeypatch.setenv("SPACE_ID", "team/arena")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "x")
    monkeypatch.setenv("SPACE_AUTHOR_NAME", "team")
    space = Settings(hosted=True)
    assert owners(space) == {"team"}
    assert is_owner(space, _request(oauth_user="team")) and not is_owner(space, _request(oauth_user="annotator"))
    assert not is_owner(space, _request(oauth_user="team", expires_at=1.0))  # an expired sign-in
    assert not is_owner(Settings(hosted=True, allow_anonymous=True), _request())  # a typed name is anyone


def test_an_export_makes_the_exporters_earlier_votes_not_blind(tmp_path):
    write_synthetic_catalog(tmp_path / "c.parquet", n=80, dim=8)
    store = VoteStore(tmp_path / "v.db")
    arena = Arena(Searcher.open(read_catalog(tmp_path / "c.parquet")), store, seed=0)
    for exporter, expected in (("alice", False), ("someone else", True), (None, False)):
        state = arena.start("alice")
        arena.next_round(state)
        arena.vote(state, "left", reveal=False)  # blind: the sides were never shown
        arena.note_export(exporter)
        again = arena.undo(state)
        assert again.blind is expected, exporter
        arena.vote(state, "right", reveal=False)
        assert store.votes()[-1]["blind"] == int(expected)
        arena._exports.clear()


def test_annotators_get_nothing_from_results_or_export_over_http(tmp_path, serve_app):
    from gradio_client import Client

    (tmp_path / "users.txt").write_text("alice:apw\nbob:bpw\n")
    url = serve_app("--users", str(tmp_path / "users.txt"), "--admins", "alice", "--votes", str(tmp_path / "v.db"))
    bob = Client(url, auth=("bob", "bpw"), verbose=False, download_files=False)
    out = bob.predict("bob", "all", api_name="/arena_start")
    bob.predict(out[2], False, api_name="/arena_left")  # a blind vote
    results = bob.predict(None, [], api_name="/results_refresh")
    assert results[1] == OWNERS_ONLY and "finetuned" not in str(results)
    with pytest.raises(Exception, match="owners"):
        bob.predict([], api_name="/results_export")
    alice = Client(url, auth=("alice", "apw"), verbose=False, download_files=False)
    results = alice.predict(None, [], api_name="/results_refresh")
    assert results[1] != OWNERS_ONLY
    files = alice.predict([], api_name="/results_export")
    assert files
