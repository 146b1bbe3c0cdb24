"""A stranger's first hour, end to end, from a folder that is neither the checkout nor the catalog's:
their photos and a metadata CSV, a catalog with a split drawn by `embed --split`, a fine-tune, an arena
catalog with the base and the fine-tuned model, a metadata change picked up by a re-run, an index,
`search` from yet another folder, `serve`, votes through the app's HTTP API past the last query, an
import of another catalog's votes, and the verdict. On main this path cut the user a dozen times
(issue 21): among them a split to add by hand, a fine-tuned model's relative path that only loaded
from one folder, a re-run that kept the old metadata, and the arena repeating one query silently."""

import csv
import json
import os
import subprocess
import sys

from catalog_helpers import write_photos
from cli_runner import run_cli
from conftest import ROOT, free_port, wait_http, with_project

N_PHOTOS = 30


def _cli(*args, cwd):
    out = run_cli(*args, cwd=cwd)
    assert out.returncode == 0, f"clip-arena {' '.join(args)}\n{out.stdout}\n{out.stderr}"
    return out


def _write_metadata(path, photos, extra=None):
    with open(path, "w", newline="") as f:
        fields = ["image_uri", "caption", "category", *(extra or {})]
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        for i, p in enumerate(photos):
            row = {"image_uri": p.name, "caption": f"a photo of discs number {i}",
                   "category": ("garden", "street", "studio")[i % 3]}
            row.update({k: v(i) for k, v in (extra or {}).items()})
            writer.writerow(row)


def _serve(cwd, *args):
    port = free_port()
    log = open(cwd / "serve.log", "w+")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args], cwd=cwd,
                            stdout=log, stderr=subprocess.STDOUT, env=with_project({**os.environ, "HF_HUB_OFFLINE": "1"}))
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc=proc)
    except Exception:
        log.seek(0)
        proc.kill()
        raise AssertionError(log.read())
    return proc, log, f"http://127.0.0.1:{port}/"


def test_a_strangers_first_hour(tmp_path, tiny_open_clip_spec):
    photos_dir, project, work, elsewhere = (tmp_path / d for d in ("photos", "project", "work", "elsewhere"))
    for d in (project, work, elsewhere):
        d.mkdir()
    photos = write_photos(photos_dir, N_PHOTOS, size=(320, 240))
    _write_metadata(photos_dir / "metadata.csv", photos)
    base = f"base={tiny_open_clip_spec}"

    # 1. A first catalog, with a split drawn for it (seeded, by category): what finetune needs.
    out = _cli("embed", "--images", "../photos", "--metadata", "../photos/metadata.csv", "--method", base,
               "--split", "60/20/20", "--split-by", "category", "-o", "../project/base.parquet", cwd=work)
    assert f"{N_PHOTOS} images ({N_PHOTOS} new" in out.stdout + out.stderr

    # 2. A fine-tune, written under a relative folder of the working folder.
    _cli("finetune", "--catalog", "../project/base.parquet", "--model", tiny_open_clip_spec, "--scenario", "full",
         "--epochs", "2", "--batch-size", "6", "-o", "runs/ft", cwd=work)
    assert (work / "runs" / "ft" / "model").is_dir()

    # 3. The arena's catalog: the base and the fine-tuned model, named by a relative path.
    arena_args = ["embed", "--images", "../photos", "--metadata", "../photos/metadata.csv", "--method", base,
                  "--method", "tuned=open_clip:local-dir:runs/ft/model", "--split", "60/20/20", "--split-by",
                  "category", "-o", "../project/arena.parquet"]
    _cli(*arena_args, cwd=work)
    from clip_arena.index.catalog import read_catalog

    catalog = read_catalog(project / "arena.parquet")
    assert catalog.meta["methods"]["tuned"]["spec"] == f"open_clip:local-dir:{work / 'runs' / 'ft' / 'model'}"
    splits = catalog.frame(["split"])["split"]
    tests = int((splits == "test").sum())
    assert 3 <= tests < N_PHOTOS and set(splits) == {"train", "val", "test"}

    # 4. The metadata changes (a column added, a caption edited): a re-run follows the CSV, keeps the vectors.
    _write_metadata(photos_dir / "metadata.csv", photos, extra={"style": lambda i: "bright" if i % 2 else "dark"})
    out = _cli(*arena_args, cwd=work)
    said = out.stdout + out.stderr
    assert f"0 new, {N_PHOTOS} kept" in said and "style added" in said
    refreshed = read_catalog(project / "arena.parquet")
    assert "style" in refreshed.table.column_names and list(refreshed.frame(["split"])["split"]) == list(splits)

    # 5. An index, and a search from a folder that is neither the catalog's nor the one it was made in.
    _cli("index", "--catalog", "../project/arena.parquet", cwd=work)
    found = _cli("search", "--catalog", str(project / "arena.parquet"), "--method", "tuned", "--text",
                 "a photo of discs", "-k", "3", "--json", cwd=elsewhere)
    assert len(json.loads(found.stdout)["results"]) == 3

    # 6. serve, from the working folder; votes through the HTTP API, past the last test query.
    proc, log, url = _serve(work, "--catalog", "../project/arena.parquet", "--votes", "votes.db",
                            "--model", tiny_open_clip_spec)
    try:
        from gradio_client import Client

        client = Client(url, verbose=False, download_files=False)
        out = client.predict("stranger", "all", api_name="/arena_start")
        choices = ["left", "right"]
        for i in range(tests):
            assert out[0].startswith(f"Round {i + 1}."), out[0]
            out = client.predict(out[2], True, api_name=f"/arena_{choices[i % 2]}")
        assert out[0].startswith(f"**You have judged every test query ({tests}); new rounds would repeat"), out[0]
        out = client.predict(api_name="/arena_continue")  # the explicit choice to go on
        out = client.predict(out[2], True, api_name="/arena_right")
        out = client.predict(out[2], True, api_name="/arena_undo")  # the reveal was on: said so
        assert "Vote withdrawn" in out[1] and "marked as not blind" in out[1]
        out = client.predict(out[2], True, api_name="/arena_left")
        finished = client.predict(out[2], True, api_name="/arena_finish")[0]
        assert f"{tests} votes" in finished and "1 more vote, cast after you saw the methods" in finished
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.seek(0)
        served = log.read()
        log.close()
    assert "share=True" not in served
    from clip_arena.votes.store import VoteStore

    votes = VoteStore(work / "votes.db").votes(include_undone=False)
    order = [v["query_id"] for v in votes]
    assert len(set(order[:tests])) == tests and all(a != b for a, b in zip(order, order[1:]))

    # 7. Votes of another catalog: refused in one sentence, then pooled only when asked, with a warning.
    _cli("votes", "export", "--votes", "votes.db", "-o", "mine.csv", cwd=work)
    with open(work / "mine.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    tuned_hash = votes[0]["catalog_fingerprint"].split("tuned:")[1][:12]
    for row in rows:  # the same votes, cast on a catalog whose tuned model has other embeddings
        row["catalog_fingerprint"] = row["catalog_fingerprint"].replace(tuned_hash, "f" * 12)
        row["vote_id"], row["round_id"] = "x" + row["vote_id"][1:], "x" + row["round_id"][1:]
    with open(work / "theirs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    other_store = tmp_path / "work" / "theirs.db"
    _cli("votes", "import", "theirs.csv", "--votes", str(other_store), cwd=work)  # a store of its own: fine
    refused = run_cli("votes", "import", "theirs.csv", "--votes", "votes.db", cwd=work)
    assert refused.returncode == 2 and "another catalog" in refused.stderr and "--allow-other-catalog" in refused.stderr

    _cli("votes", "import", "theirs.csv", "--votes", "votes.db", "--allow-other-catalog", cwd=work)
    pooled = _cli("stats", "--votes", "votes.db", cwd=work).stdout
    assert pooled.startswith("Warning: these votes come from 2 different embeddings of method tuned")

    # 8. The verdict, with the catalog named: its own votes only, and the test split said too small.
    verdict = _cli("stats", "--votes", "votes.db", "--catalog", "../project/arena.parquet", cwd=work).stdout
    live = sum(not row["undone_at"] for row in rows)
    assert verdict.startswith(f"{live} votes cast on another catalog"), verdict
    print(verdict)
    assert "too few to tell it" in verdict and "clip-arena embed --split" in verdict
