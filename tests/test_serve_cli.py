"""`clip-arena serve`: refuses bad input in one sentence before starting, and says what it serves;
the users file behind --users."""

import pytest
from hypothesis import given, settings, strategies as st

from clip_arena.cli.main import main
from cli_runner import run_cli
from clip_arena.core.auth import Users, check_password, hash_password, read_users
from clip_arena.core.errors import UserError


@pytest.fixture
def no_launch(monkeypatch):
    from clip_arena import webapp as app

    launched = []
    monkeypatch.setattr(app, "launch", lambda settings, arena=None: launched.append((settings, arena)))
    return launched


def test_serve_refuses_a_missing_catalog_in_one_sentence():
    """On main it started and failed in the browser."""
    result = run_cli("serve", "--catalog", "/nonexistent/catalog.parquet", "--port", "1", timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["clip-arena serve: error: Catalog file /nonexistent/catalog.parquet "
                                                  "does not exist."]


@pytest.mark.parametrize("args, message", [
    (["--catalog", "README.md"], "is not a readable Parquet file"),
    (["--model", "clip:ViT"], "Model spec 'clip:ViT' is not understood"),
    (["--model", "demo:large"], "There is no demo model 'large'"),
    (["--auth", "alice"], "--auth must be NAME:PASSWORD."),
    (["--users", "/nonexistent/users.txt"], "Cannot read the users file /nonexistent/users.txt"),
])
def test_serve_refuses_bad_input_before_starting(args, message, no_launch, capsys, tmp_path):
    assert main(["serve", "--votes", str(tmp_path / "v.db"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert no_launch == []


def test_serve_prints_what_it_serves(no_launch, capsys, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("alice:one\nbob:two\n")
    assert main(["serve", "--votes", str(tmp_path / "v.db"), "--users", str(users), "--port", "7999",
                 "--model", "demo:base", "--image-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "catalog: " in out and "catalog.parquet (1870 rows, 280 arena queries)" in out
    assert "methods: base, finetuned" in out and f"votes: {tmp_path / 'v.db'}" in out and "model: demo:base" in out
    assert "catalog images: 1870 files under" in out and f"image roots for batch CSVs: {tmp_path}" in out
    assert "users: 2" in out and "URL: http://127.0.0.1:7999/" in out
    assert len(no_launch) == 1 and no_launch[0][1] is not None  # the arena checked here is the one served


def test_hosted_serve_says_local_paths_are_off_unless_roots_are_configured(no_launch, capsys, tmp_path, monkeypatch):
    """On main a hosted serve printed the working folder as an image root, though no tab read it."""
    monkeypatch.delenv("CLIP_ARENA_IMAGE_ROOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--votes", str(tmp_path / "v.db"), "--hosted", "--allow-anonymous"]) == 0
    assert "image roots for batch CSVs: none (local paths off)" in capsys.readouterr().out
    (tmp_path / "photos").mkdir()
    assert main(["serve", "--votes", str(tmp_path / "v.db"), "--hosted", "--allow-anonymous",
                 "--image-root", str(tmp_path / "photos")]) == 0
    assert f"image roots for batch CSVs: {tmp_path / 'photos'}" in capsys.readouterr().out


def test_users_file_plain_and_hashed(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text(f"\ufeff# team\n\nalice:pa:ss\nbob:{hash_password('hunter2', 1000)}\r\n  carol : x \n")
    users = Users(read_users(path)).check
    assert users("alice", "pa:ss") and not users("alice", "pa")  # a password may hold ':'
    assert users("bob", "hunter2") and not users("bob", "hunter3") and not users("bob", hash_password("hunter2", 1000))
    assert users("carol", " x ") and not users("dave", "")
    both = Users.from_settings("erin:pw", str(path))
    assert len(both) == 4 and both.check("erin", "pw")
    for text, message in [("alice\n", "Line 1 of .* must be NAME:PASSWORD"), ("a:1\na:2\n", "listed twice"),
                          ("# nobody\n", "lists no user"), (":pw\n", "must be NAME:PASSWORD")]:
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            read_users(path)


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(max_size=40))
def test_a_hashed_password_matches_only_itself(password, other):
    stored = hash_password(password, iterations=10)
    assert check_password(password, stored)
    assert check_password(other, stored) == (other == password)
    assert not check_password(password, stored.replace("$10$", "$11$"))


def test_users_hash_prints_a_line_the_users_file_accepts(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "clip_arena.cli.main", "users", "hash", "alice"], input="pa ss\n",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "pa ss" not in result.stdout
    (tmp_path / "users.txt").write_text(result.stdout)
    users = Users(read_users(tmp_path / "users.txt")).check
    assert users("alice", "pa ss") and not users("alice", "pass")


def run_async(coroutine):
    """asyncio.run in a thread of its own: Playwright's sync API (the browser tests, earlier in the same
    session) keeps an event loop running in the main thread."""
    from concurrent.futures import ThreadPoolExecutor

    import asyncio

    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


def test_sign_ins_run_off_the_event_loop_with_the_same_work_for_any_name_and_a_limit(tmp_path):
    """On main the PBKDF2 check ran on Gradio's event loop (sign-in loops stalled every annotator),
    an unknown name was answered about 6x faster than a known one, and failures had no limit."""
    import asyncio
    import inspect
    import time

    from clip_arena.core import auth
    users = Users({"alice": hash_password("right"), "bob": "clear"})
    assert inspect.iscoroutinefunction(users.verify) and not callable(users)  # Gradio awaits it
    work = []
    real = auth.check_password
    auth.check_password = lambda password, stored: work.append(stored.split("$")[1] if "$" in stored else "clear") \
        or real(password, stored)
    try:
        for name in ("alice", "bob", "nobody"):
            work.clear()
            assert users.check(name, "wrong") is False
            assert str(auth.ITERATIONS) in work  # one check at the default rounds, whoever it is
    finally:
        auth.check_password = real

    async def attempts():
        ticks = 0

        async def ticker():  # the event loop keeps turning while checks run
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        results = [await users.verify("alice", "wrong") for _ in range(3)] + [await users.verify("alice", "right")]
        elapsed = time.monotonic() - started
        task.cancel()
        return results, ticks, elapsed

    results, ticks, elapsed = run_async(attempts())
    assert results == [False, False, False, True]
    assert ticks >= elapsed / 0.01 * 0.5  # the loop was free during the checks
    assert run_async(users.verify("bob", "clear")) is True


def test_a_client_or_a_name_past_its_failures_is_answered_429_without_a_check():
    from clip_arena.core.login_guard import FailureLimiter, LoginGuard

    calls = []

    async def app(scope, receive, send):  # Gradio's /login, always a wrong password here
        calls.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    clock = [0.0]

    def guard(behind_proxy):
        limits = [FailureLimiter(max_failures=3, window_s=60, clock=lambda: clock[0]) for _ in range(2)]
        return LoginGuard(app, *limits, behind_proxy=behind_proxy)

    async def post(to, ip, name="alice", forwarded=None):
        sent = []
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        scope = {"type": "http", "method": "POST", "path": "/login/", "client": (ip, 1), "headers": headers}
        body = f"username={name}&password=wrong".encode()

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await to(scope, receive, send)
        return sent[0]["status"], sent[-1].get("body", b"")

    proxied = guard(behind_proxy=True)
    codes = [run_async(post(proxied, "10.0.0.1", f"n{i}")) for i in range(4)]
    assert [c for c, _ in codes] == [400, 400, 400, 429] and b"from here" in codes[-1][1]
    assert len(calls) == 3 and calls[0] == b"username=n0&password=wrong"  # the form reaches Gradio unchanged
    # A name failed from many places is held back too, and says so (not "Incorrect credentials").
    codes = [run_async(post(proxied, f"10.1.0.{i}", "bob")) for i in range(4)]
    assert [c for c, _ in codes] == [400, 400, 400, 429] and b"for this name" in codes[-1][1]
    assert run_async(post(proxied, "10.2.0.1", "carol"))[0] == 400  # others are not held back
    # Behind a proxy the client is the address the proxy appended last, whatever the client sent.
    assert [run_async(post(proxied, "proxy", f"x{i}", f"spoof{i}, 1.2.3.4"))[0] for i in range(4)][-1] == 429
    # With no proxy in front, a forwarded-for header the client makes up does not make it someone else.
    direct = guard(behind_proxy=False)
    assert [run_async(post(direct, "10.9.9.9", f"y{i}", f"spoof{i}"))[0] for i in range(4)][-1] == 429
    clock[0] = 61.0
    assert run_async(post(proxied, "10.0.0.1", "dave"))[0] == 400  # the window passed


def test_a_running_app_limits_failed_sign_ins_and_keeps_its_monitor_closed(tmp_path, serve_app):
    """On main: no limit on failed sign-ins, and any signed-in user could read /monitoring/summary."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from clip_arena.core.login_guard import MAX_FAILURES

    (tmp_path / "users.txt").write_text("alice:secret\n")
    url = serve_app("--users", str(tmp_path / "users.txt"), "--votes", str(tmp_path / "v.db"))

    def login(password):
        data = urllib.parse.urlencode({"username": "alice", "password": password}).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(url + "login", data=data), timeout=30) as r:
                return r.status, r.headers.get("set-cookie", "")
        except urllib.error.HTTPError as err:
            return err.code, ""

    status, cookie = login("secret")
    assert status == 200 and "access-token" in cookie
    codes = [login("wrong")[0] for _ in range(MAX_FAILURES + 1)]
    assert codes[:MAX_FAILURES] == [400] * MAX_FAILURES and codes[-1] == 429
    token = cookie.split(";")[0]
    request = urllib.request.Request(url + "monitoring/summary", headers={"Cookie": token})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code in (403, 404)
