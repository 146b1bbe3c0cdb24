"""N simulated annotators vote through the app's HTTP API (gradio_client) on loopback, in hosted
mode with votes kept in a folder target; halfway through the server is killed with SIGKILL and
started again on the same disk, and the annotators reconnect. Reports votes/s and p50/p95 vote
latency (request to next round on screen, as a browser waits for it), and checks that no vote is
lost or counted twice: every acknowledged vote is in SQLite, the target holds exactly SQLite's
votes, and a new machine restored from the target gets them all.

Baseline in the same run: the same load for a shorter time with no vote target (SQLite only):
the ratio says what keeping votes beyond the machine costs.

--stress: annotators sign in (a users file), and the same load runs twice for --seconds each:
alone, then while an attacker floods /login with wrong passwords (rotating names and forwarded-for
addresses, 4 threads) and Analyze and Batch CSV jobs run (2 threads): the ratio says what the
flood and the model work cost the arena's annotators; nothing may be lost or counted twice.

    python bench/bench_hosted_load.py --annotators 8          # 60 s + 20 s baseline, about 2 minutes
    python bench/bench_hosted_load.py --annotators 32 --push-minutes 1
    python bench/bench_hosted_load.py --annotators 32 --stress --seconds 60
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "assets" / "demo" / "catalog.parquet"
CHOICES = ("left", "right", "tie", "both_bad")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path, port: int, args: list[str]):
        self.url = f"http://127.0.0.1:{port}/"
        self.log = open(folder / f"server-{time.monotonic_ns()}.log", "w+")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args], cwd=folder,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("server did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Load:
    """Annotator threads voting as fast as the server answers, until `stop_at`."""

    def __init__(self, url: str, annotators: int, stop_at: float, up: threading.Event):
        self.url, self.stop_at, self.up = url, stop_at, up
        self.latencies: list[float] = []
        self.acked: dict[str, int] = {}  # annotator -> votes the server answered
        self.in_doubt: dict[str, int] = {}  # votes whose answer never came (the server died)
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.annotate, args=(f"ann{i:02d}", i), daemon=True)
                        for i in range(annotators)]

    def annotate(self, name: str, seed: int):
        from gradio_client import Client

        rng = random.Random(seed)
        self.acked[name] = self.in_doubt[name] = 0
        while time.monotonic() < self.stop_at:
            self.up.wait()
            try:
                client = Client(self.url, verbose=False, download_files=False)
                out = client.predict(name, "all", api_name="/arena_start")
            except Exception:  # noqa: BLE001 - the server is restarting
                time.sleep(0.2)
                continue
            while time.monotonic() < self.stop_at:
                t0 = time.perf_counter()
                try:
                    out = client.predict(out[2], False, api_name=f"/arena_{rng.choice(CHOICES)}")
                except Exception as err:  # noqa: BLE001 - the server died mid-vote: that vote is in doubt
                    with self.lock:
                        self.in_doubt[name] += 1
                        if self.up.is_set():
                            self.errors.append(repr(err)[:200])
                    break
                elapsed = time.perf_counter() - t0
                if not str(out[0]).startswith("Round "):
                    self.errors.append(f"unexpected answer: {str(out[0])[:120]}")
                    break
                with self.lock:
                    self.latencies.append(elapsed)
                    self.acked[name] += 1

    def run(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join()


def per_annotator(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT annotator, COUNT(*) FROM votes GROUP BY annotator"))


def vote_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT vote_id FROM votes")}


def phase(work: Path, annotators: int, seconds: float, target: bool, push_minutes: float, kill: bool) -> dict:
    work.mkdir(parents=True)
    db, bucket, port = work / "votes.db", work / "bucket", free_port()
    args = ["--catalog", str(DEMO), "--votes", str(db), "--hosted", "--allow-anonymous", "--min-display-ms", "0"]
    if target:
        args += ["--vote-target", str(bucket), "--push-minutes", str(push_minutes)]
    server = Server(work, port, args)
    up = threading.Event()
    up.set()
    start = time.monotonic()
    load = Load(server.url, annotators, start + seconds, up)
    load.run()
    downtime = 0.0
    if kill:
        time.sleep(seconds / 2)
        up.clear()
        t0 = time.monotonic()
        server.kill()
        server = Server(work, port, args)  # the same disk, as a process restart
        downtime = time.monotonic() - t0
        up.set()
    load.join()
    wall = time.monotonic() - start
    server.stop()  # a clean stop pushes what is left
    stored = per_annotator(db)
    lat = np.array(load.latencies) * 1000
    acked, doubt = sum(load.acked.values()), sum(load.in_doubt.values())
    lost = {a: n - stored.get(a, 0) for a, n in load.acked.items() if stored.get(a, 0) < n}
    extra = {a: stored.get(a, 0) - n - load.in_doubt[a] for a, n in load.acked.items()
             if stored.get(a, 0) > n + load.in_doubt[a]}
    out = {"acked": acked, "in_doubt": doubt, "stored": sum(stored.values()), "lost": lost, "extra": extra,
           "errors": load.errors[:3], "votes_per_s": acked / max(wall - downtime, 1e-9), "downtime_s": downtime,
           "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
           "p95_ms": float(np.percentile(lat, 95)) if len(lat) else float("nan")}
    if target:
        # A new machine with an empty disk, restored from the target alone.
        from clip_arena.votes.store import VoteStore
        from clip_arena.votes.targets import FolderTarget, restore

        fresh = VoteStore(work / "new-machine" / "votes.db")
        restore(fresh, FolderTarget(bucket, work / "new-machine" / "staging"))
        out["restored"] = len(fresh.votes())
        out["restored_same_ids"] = {v["vote_id"] for v in fresh.votes()} == vote_ids(db)
    return out


def flood_logins(url: str, stop_at: float, counts: dict, seed: int) -> None:
    """Wrong passwords as fast as the server answers, under ever-new names and forwarded-for addresses."""
    import urllib.error
    import urllib.parse

    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        name = f"intruder{rng.randrange(10**9)}"
        data = urllib.parse.urlencode({"username": name, "password": "wrong"}).encode()
        forwarded = f"203.0.113.{rng.randrange(256)}"
        request = urllib.request.Request(url + "login", data=data, headers={"X-Forwarded-For": forwarded})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                code = response.status
        except urllib.error.HTTPError as err:
            code = err.code
        except OSError:
            code = "error"
        counts[code] = counts.get(code, 0) + 1


def model_jobs(url: str, stop_at: float, counts: dict, folder: Path, seed: int) -> None:
    """Analyze and Batch CSV jobs, one after another, as a team member would start them."""
    from gradio_client import Client, handle_file

    images = sorted((ROOT / "assets" / "demo" / "images").iterdir())[:40]
    rows = "".join(f"{p},a picture {i}\n" for i, p in enumerate(images))
    (folder / f"batch{seed}.csv").write_text("image,caption\n" + rows)
    client = Client(url, verbose=False, download_files=False, auth=("owner", "owner-pw"))
    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        try:
            if rng.random() < 0.5:
                client.predict(handle_file(str(rng.choice(images))), "", "a smiling face", "demo:finetuned",
                               api_name="/on_analyze")
                counts["analyze"] = counts.get("analyze", 0) + 1
            else:
                client.predict(handle_file(str(folder / f"batch{seed}.csv")), None, None, "demo:finetuned",
                               api_name="/on_run")
                counts["batch"] = counts.get("batch", 0) + 1
        except Exception as err:  # noqa: BLE001 - counted, the load goes on
            counts["error"] = counts.get("error", 0) + 1
            counts["last_error"] = repr(err)[:200]


def stress_phase(work: Path, annotators: int, seconds: float, stress: bool) -> dict:
    """Signed-in annotators voting for `seconds`, with (or without) a login flood and model jobs."""
    work.mkdir(parents=True)
    db, port = work / "votes.db", free_port()
    users = work / "users.txt"
    users.write_text("".join(f"ann{i:02d}:pw-{i}\n" for i in range(annotators)) + "owner:owner-pw\n")
    args = ["--catalog", str(DEMO), "--votes", str(db), "--hosted", "--users", str(users), "--admins", "owner",
            "--min-display-ms", "0", "--image-root", str(ROOT / "assets"), "--model", "demo:finetuned"]
    server = Server(work, port, args)
    go = threading.Event()  # set once every annotator has signed in and started: the measured run begins
    load = Load(server.url, annotators, float("inf"), go)
    load.signed_in = threading.Semaphore(0)
    load.threads = [threading.Thread(target=signed_in_annotator, args=(load, f"ann{i:02d}", i, f"pw-{i}"), daemon=True)
                    for i in range(annotators)]
    load.run()
    for _ in range(annotators):
        load.signed_in.acquire(timeout=300)
    start = time.monotonic()
    load.stop_at = start + seconds
    extra, counts = [], {}
    if stress:
        extra += [threading.Thread(target=flood_logins, args=(server.url, load.stop_at, counts, s), daemon=True)
                  for s in range(4)]
        extra += [threading.Thread(target=model_jobs, args=(server.url, load.stop_at, counts, work, s), daemon=True)
                  for s in range(2)]
    for th in extra:
        th.start()
    go.set()
    load.join()
    for th in extra:
        th.join()
    wall = time.monotonic() - start
    server.stop()
    stored = per_annotator(db)
    lat = np.array(load.latencies) * 1000
    lost = {a: n - stored.get(a, 0) for a, n in load.acked.items() if stored.get(a, 0) < n}
    extra_votes = {a: stored.get(a, 0) - n for a, n in load.acked.items() if stored.get(a, 0) > n}
    return {"acked": sum(load.acked.values()), "stored": sum(stored.values()), "lost": lost, "extra": extra_votes,
            "errors": load.errors[:3], "votes_per_s": sum(load.acked.values()) / wall, "counts": counts,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p95_ms": float(np.percentile(lat, 95)) if len(lat) else float("nan")}


def signed_in_annotator(load: Load, name: str, seed: int, password: str) -> None:
    """One annotator who signs in, then votes as fast as the server answers until the run ends."""
    from gradio_client import Client

    rng = random.Random(seed)
    load.acked[name] = load.in_doubt[name] = 0
    deadline = time.monotonic() + 300
    while True:  # a team signing in at once queues for the password checks: a person tries again
        try:
            client = Client(load.url, verbose=False, download_files=False, auth=(name, password))
            out = client.predict(name, "all", api_name="/arena_start")
            break
        except Exception:  # noqa: BLE001 - timed out waiting for the check
            if time.monotonic() > deadline:
                raise
            time.sleep(rng.uniform(0.5, 2.0))
    load.signed_in.release()
    load.up.wait()
    while time.monotonic() < load.stop_at:
        t0 = time.perf_counter()
        try:
            out = client.predict(out[2], False, api_name=f"/arena_{rng.choice(CHOICES)}")
        except Exception as err:  # noqa: BLE001 - an error the run reports
            with load.lock:
                load.errors.append(repr(err)[:200])
            break
        elapsed = time.perf_counter() - t0
        with load.lock:
            load.latencies.append(elapsed)
            load.acked[name] += 1


def stress_main(args) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-stress-"))
    try:
        calm = stress_phase(work / "calm", args.annotators, args.seconds, stress=False)
        busy = stress_phase(work / "busy", args.annotators, args.seconds, stress=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{args.annotators} signed-in annotators, loopback, demo catalog, {args.seconds:g} s each run")
    print("| run | votes | votes/s | p50 ms | p95 ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in (("annotators alone (baseline)", calm), ("+ login flood and Analyze/Batch jobs", busy)):
        print(f"| {name} | {r['acked']} | {r['votes_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |")
    counts = {k: v for k, v in busy["counts"].items() if k != "last_error"}
    print(f"during the flood: {counts}" + (f"; last job error: {busy['counts']['last_error']}"
                                            if "last_error" in busy["counts"] else ""))
    print(f"ratio p95 busy/alone: {busy['p95_ms'] / calm['p95_ms']:.2f}; "
          f"votes/s busy/alone: {busy['votes_per_s'] / calm['votes_per_s']:.2f}")
    ok = all(not r["lost"] and not r["extra"] and not r["errors"] and r["acked"] == r["stored"] for r in (calm, busy))
    print("nothing lost or counted twice" if ok else
          f"PROBLEM: {[(r['lost'], r['extra'], r['errors'], r['acked'], r['stored']) for r in (calm, busy)]}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--annotators", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--baseline-seconds", type=float, default=20.0)
    p.add_argument("--push-minutes", type=float, default=0.0, help="0: every vote pushed as it is cast")
    p.add_argument("--keep", action="store_true", help="keep the work folder (votes, target, server logs)")
    p.add_argument("--stress", action="store_true",
                   help="signed-in annotators alone, then under a login flood and Analyze/Batch jobs")
    args = p.parse_args()
    if args.stress:
        return stress_main(args)
    work = Path(tempfile.mkdtemp(prefix="bench-hosted-"))
    try:
        base = phase(work / "baseline", args.annotators, args.baseline_seconds, False, 0, kill=False)
        ours = phase(work / "target", args.annotators, args.seconds, True, args.push_minutes, kill=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{args.annotators} annotators, loopback, demo catalog, folder target pushed "
          f"{'at every vote' if args.push_minutes == 0 else f'every {args.push_minutes:g} min'}")
    print("| run | seconds | votes | votes/s | p50 ms | p95 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| baseline: SQLite only | {args.baseline_seconds:g} | {base['acked']} | {base['votes_per_s']:.1f} | "
          f"{base['p50_ms']:.0f} | {base['p95_ms']:.0f} |")
    print(f"| vote log + folder target, kill -9 halfway | {args.seconds:g} (restart {ours['downtime_s']:.1f} s) | "
          f"{ours['acked']} | {ours['votes_per_s']:.1f} | {ours['p50_ms']:.0f} | {ours['p95_ms']:.0f} |")
    print(f"ratio votes/s target/baseline: {ours['votes_per_s'] / base['votes_per_s']:.2f}; "
          f"p95 target/baseline: {ours['p95_ms'] / base['p95_ms']:.2f}")
    print(f"acknowledged {ours['acked']}, in doubt at the kill {ours['in_doubt']}, stored {ours['stored']}, "
          f"restored on a new machine {ours['restored']} (same vote ids: {ours['restored_same_ids']})")
    ok = (not ours["lost"] and not ours["extra"] and ours["restored_same_ids"] and not base["lost"]
          and not ours["errors"] and not base["errors"])
    print("nothing lost or counted twice" if ok else
          f"PROBLEM: lost {ours['lost']} extra {ours['extra']} errors {ours['errors'] + base['errors']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
