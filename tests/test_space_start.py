"""The app as a Hugging Face Space starts it: `python app.py` run in the repository's files with SPACE_ID
set, the requirements installed and the project itself not installed.

On main before this, such a Space with no sign-in set up said "Enter your name and press Start" over a
disabled name box, "You are signed in" before anyone had, and its log "users: no login (annotators type
a name)"; that no vote could be cast came only as a toast after pressing Start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

from conftest import copy_checkout, free_port, wait_http
from clip_arena.core.hosting import LOGIN, NOBODY, OAUTH, TYPED, voting_texts


def test_a_space_without_sign_in_says_voting_is_off_and_how_to_enable_it(tmp_path):
    space = copy_checkout(tmp_path / "space")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIP_ARENA_", "OAUTH_", "PYTHON"))}
    env.update(SPACE_ID="someone/clip-arena", HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    port = free_port()
    log = open(tmp_path / "space.log", "w+")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=space, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc=proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as response:
            config = json.load(response)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log.seek(0)
    text = log.read()
    # The Space runs its own files: the demo catalog is the one in the repository it was given.
    assert f"catalog: {space / 'assets' / 'demo' / 'catalog.parquet'}" in text, text
    assert "users: nobody can vote" in text and "hf_oauth: true" in text and "annotators type a name" not in text
    props = {c["props"].get("elem_id"): c["props"] for c in config["components"] if c["props"].get("elem_id")}
    status = props["arena-status"]["value"]
    assert "Voting is off here" in status
    for way in ("hf_oauth: true", "--users FILE", "--allow-anonymous"):  # how the owner enables voting
        assert way in status
    assert props["arena-start"]["interactive"] is False and props["arena-name"]["interactive"] is False
    assert "signed in:" not in (props["arena-name"].get("info") or "").lower()
    assert "Enter your name" not in json.dumps(config)


def test_each_way_of_naming_annotators_says_what_is_true_before_anyone_signs_in():
    assert "press **Start**" in voting_texts(TYPED).status and voting_texts(TYPED).name_info is None
    oauth = voting_texts(OAUTH)
    assert oauth.status.startswith("Sign in with Hugging Face") and "signed in" not in oauth.name_info.lower()
    assert voting_texts(LOGIN, 3).users_line == "users: 3 (the login name is the annotator)"
    off = voting_texts(NOBODY)
    assert "Voting is off" in off.status and "Voting is off" in off.name_info and "nobody can vote" in off.users_line
