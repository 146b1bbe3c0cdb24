"""`--engine ray` (Ray Data in local mode, on CPU): the same outputs as the local engine, row for row,
bad rows included; a killed job resumes without redoing finished parts; no Ray, one sentence."""

import csv
import importlib.util
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from PIL import Image

from clip_arena.analyzer.batch import BatchOptions, score_csv
from cli_runner import run_cli
from clip_arena.core.errors import UserError
from clip_arena.core.settings import FetchLimits
from http_server import LocalServer, Route
from clip_arena.index.catalog import read_catalog
from clip_arena.index.embed import build_catalog, items_from_csv, items_from_folder, merge_items
from clip_arena.models import get_encoder

if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its settings when imported
    pytest.skip("the Ray extra is not installed: pip install -e '.[ray]'", allow_module_level=True)

from clip_arena.engines.ray_embed import build_catalog_ray  # noqa: E402
from clip_arena.engines.ray_runtime import RayOptions, ray_session  # noqa: E402
from clip_arena.engines.ray_score import score_csv_ray  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray instance for the in-process tests (2 CPUs, no dashboard, no usage stats)."""
    pythonpath = os.environ.get("PYTHONPATH")
    auth_before = os.environ.get("RAY_AUTH_MODE")
    with ray_session(RayOptions(), num_cpus=2) as ray:
        # Ray listens on every interface: the local instance requires a one-off token
        assert auth_before or (os.environ["RAY_AUTH_MODE"] == "token" and len(os.environ["RAY_AUTH_TOKEN"]) == 64)
        yield
    assert not ray.is_initialized()
    assert os.environ.get("PYTHONPATH") == pythonpath  # the process's search path is given back


def _png(colour, size=(24, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.fixture
def server():
    with LocalServer() as s:
        s.routes.update({
            "/red.png": Route(_png("red")),
            "/html": Route(b"<html>not an image</html>", headers={"Content-Type": "text/html"}),
            "/cut.png": Route(_png("blue")[:60]),
        })
        yield s


@pytest.fixture
def hostile_csv(tmp_path, server):
    """Good and bad rows of every kind, repeated images across parts, formula cells and header, short and
    long rows, a NUL byte."""
    root = tmp_path / "root"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (30 + i, 26, 3), np.uint8)).save(root / f"p{i}.png")
    (root / "fake.png").write_text("not an image")
    (tmp_path / "secret.png").write_bytes(_png("white"))
    u = server.url
    rows = [
        ("p0.png", "a noisy square", "fine"),
        (u("/red.png"), "a red rectangle", "url"),
        (u("/html"), "html", "non-image"),
        (u("/missing.png"), "gone", "404"),
        ("../secret.png", "escape", "traversal"),
        ("p1.png", "", "missing caption"),
        ("fake.png", "fake", "not an image"),
        ("", "no image", "empty cell"),
        ("ftp://example.com/a.png", "ftp", "scheme"),
        (u("/cut.png"), "cut", "truncated"),
        ("p2.png", "=HYPERLINK(\"http://evil\")", "@formula"),
        ("p0.png", "a noisy square, again", "+repeat"),
        ("p3.png", "two\nlines", "-multi"),
        ("nowhere.png", "missing", "not found"),
        ("p2.png", "x" * 500, "long"),
        (u("/red.png"), "red again", "repeat url"),
        ("p1.png", "the last one", "=last"),
        ("p0.png",),  # a short row: padded, so its caption is missing
        ("p3.png", "no note cell"),  # short by one: padded, scored
        ("p1.png", "too many", "long", "an extra cell"),  # a long row: bad_row
        ("p\x00.png", "a NUL in the path", "nul"),
    ]
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["image", "caption", "=note"])
        w.writerows(rows)
    return path, root, rows


SCORES = {"cosine": 1e-6, "similarity": 1e-4, "clip_score": 1e-3}  # printed to 6, 4 and 4 decimals


def _same_scored(ours: list[list[str]], theirs: list[list[str]]) -> None:
    """Header and every cell equal; scores to float precision (a Ray actor runs torch on the threads Ray
    gives it, which may reorder sums in the last bits, and a rounded digit may flip)."""
    assert ours[0] == theirs[0] and len(ours) == len(theirs)
    for a, b in zip(ours[1:], theirs[1:]):
        for name, x, y in zip(ours[0], a, b):
            if name in SCORES and x and y:
                assert float(x) == pytest.approx(float(y), abs=SCORES[name]), (name, a, b)
            else:
                assert x == y, (name, a, b)


def test_score_on_ray_writes_the_local_engines_file(local_ray, hostile_csv, tmp_path, tiny_open_clip_spec):
    path, root, rows = hostile_csv
    options = BatchOptions(image_roots=[str(root)], chunk_rows=4,
                           limits=FetchLimits(allow_private_urls=True, timeout_s=2.0))
    local = score_csv(path, tmp_path / "local.csv", get_encoder(tiny_open_clip_spec), options)
    seen = []
    report = score_csv_ray(path, tmp_path / "ray.csv", tiny_open_clip_spec, options,
                           RayOptions(actors=2, part_rows=4), progress=lambda f, text: seen.append((f, text)))
    out = _read(tmp_path / "ray.csv")
    assert len(out) == len(rows) + 1
    _same_scored(out, _read(tmp_path / "local.csv"))
    # every cell quoted, the header neutralised, as the local engine writes it
    assert (tmp_path / "ray.csv").read_text(encoding="utf-8").startswith('"image","caption","\'=note","cosine",')
    errors = {r[2]: r[-1] for r in out[1:]}
    assert errors["'+repeat"] == "" and errors["fine"] == "" and errors["url"] == ""
    assert errors["non-image"].startswith("not_image:") and errors["traversal"].startswith("outside_roots:")
    assert errors["missing caption"].startswith("missing_caption:") and errors["404"].startswith("http_error:")
    assert out[11][1].startswith("'=HYPERLINK")
    short, short_by_one, long, nul = out[-4:]
    assert short[1:4] == ["", "", ""] and short[-1].startswith("missing_caption:")
    assert short_by_one[2] == "" and short_by_one[-1] == "" and short_by_one[3]  # scored
    assert long[2] == "long" and long[-1].startswith("bad_row:") and long[3] == ""
    assert nul[2] == "nul" and nul[-1] and not nul[3]  # that row's error, the batch goes on
    assert (report.rows, report.scored, report.errors) == (local.rows, local.scored, local.errors)
    assert seen[-1] == (1.0, f"{len(rows)} of {len(rows)} rows scored")
    assert not (tmp_path / "ray.csv.parts").exists()  # parts are joined, then removed


def test_score_on_ray_keeps_refusing_private_addresses(local_ray, hostile_csv, tmp_path, tiny_open_clip_spec, server):
    path, root, _ = hostile_csv
    score_csv_ray(path, tmp_path / "ray.csv", tiny_open_clip_spec, BatchOptions(image_roots=[str(root)]),
                  RayOptions(part_rows=8))
    out = _read(tmp_path / "ray.csv")
    urls = [r for r in out[1:] if r[0].startswith("http://127.0.0.1")]
    assert urls and all(r[-1].startswith("private_address:") for r in urls)
    assert server.hits == []  # nothing was fetched, from any Ray worker


def test_resume_reuses_only_the_parts_of_the_same_rows(local_ray, tmp_path, tiny_open_clip_spec):
    """Parts are named by what they were computed from (rows, model, settings): after an edit to the
    input, --resume redoes the edited part and reuses the others."""
    root = tmp_path / "root"
    root.mkdir()
    for i in range(6):
        Image.new("RGB", (20, 20 + i), (40 * i, 90, 30)).save(root / f"{i}.png")
    path = tmp_path / "pairs.csv"
    lines = [f"{i}.png,caption {i}" for i in range(6)]
    path.write_text("image,caption\n" + "\n".join(lines) + "\n")
    options = BatchOptions(image_roots=[str(root)], chunk_rows=2)

    def stop(fraction, text):
        if fraction >= 0.5:
            raise KeyboardInterrupt  # killed once two of its three parts are on disk

    with pytest.raises(KeyboardInterrupt):
        score_csv_ray(path, tmp_path / "out.csv", tiny_open_clip_spec, options, RayOptions(part_rows=2), progress=stop)
    first = {int(p.name.split("-")[1]) for p in (tmp_path / "out.csv.parts").glob("part-*.csv")}
    assert len(first) == 2
    edited = min(first)
    lines[2 * edited] = f"{2 * edited}.png,an edited caption"
    path.write_text("image,caption\n" + "\n".join(lines) + "\n")
    resumed = BatchOptions(image_roots=[str(root)], chunk_rows=2, resume=True)
    report = score_csv_ray(path, tmp_path / "out.csv", tiny_open_clip_spec, resumed, RayOptions(part_rows=2))
    assert (report.skipped_resumed, report.rows) == (2, 4)  # one part kept; the edited one and the last redone
    score_csv(path, tmp_path / "local.csv", get_encoder(tiny_open_clip_spec), options)
    _same_scored(_read(tmp_path / "out.csv"), _read(tmp_path / "local.csv"))
    assert _read(tmp_path / "out.csv")[2 * edited + 1][1] == "an edited caption"


def _images(folder, n):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (24 + i, 30, 3), np.uint8)).save(folder / f"im{i:02d}.jpg")
    (folder / "broken.jpg").write_text("not an image")
    return folder


def _same_catalog(a_path, b_path, methods):
    a, b = read_catalog(a_path), read_catalog(b_path)
    columns = [f"{m}_embedding" for m in methods]
    assert a.table.drop(columns).equals(b.table.drop(columns))  # ids, uris, captions, metadata, order
    assert a.table.schema.equals(b.table.schema, check_metadata=False)
    for m in methods:
        np.testing.assert_allclose(a.embeddings(m), b.embeddings(m), atol=1e-5)
    meta_a, meta_b = a.meta, b.meta
    for meta in (meta_a, meta_b):
        for method in meta["methods"].values():
            method.pop("created_at")
    assert meta_a == meta_b


def test_embed_on_ray_writes_the_local_engines_catalog(local_ray, tmp_path, tiny_open_clip_spec, tiny_hf_spec):
    folder = _images(tmp_path / "images", 11)
    meta = tmp_path / "meta.csv"
    meta.write_text("image_uri,caption,split,category\nim00.jpg,=a formula caption,test,noise\n"
                    "im03.jpg,another,train,noise\nbroken.jpg,broken,val,x\nmissing.jpg,gone,val,x\n")
    items = merge_items(items_from_folder(folder), items_from_csv(meta, folder))
    specs = {"base": tiny_open_clip_spec, "finetuned": tiny_hf_spec}
    encoders = {m: get_encoder(s) for m, s in specs.items()}
    local = build_catalog(items, encoders, tmp_path / "local" / "catalog.parquet", dtype="float16", batch_size=4,
                          workers=0, progress=False)
    ours = build_catalog_ray(items, specs, tmp_path / "ray" / "catalog.parquet", RayOptions(actors=2, part_rows=4),
                             dtype="float16", batch_size=4, progress=False)
    assert (ours.added, ours.kept) == (local.added, local.kept) == (11, 0)
    assert sorted(ours.failed) == sorted(local.failed) and {f[1] for f in ours.failed} == {"not_image", "not_found"}
    _same_catalog(tmp_path / "local" / "catalog.parquet", tmp_path / "ray" / "catalog.parquet", list(specs))
    assert not (tmp_path / "ray" / "catalog.parquet.parts").exists()



def test_an_interrupted_embed_reuses_its_finished_parts(local_ray, tmp_path, tiny_open_clip_spec, monkeypatch):
    """Growing a catalog, the job dies once its first part reached the writer; the re-run fetches no
    image of a part already on disk, keeps the catalog's rows and writes the local engine's catalog."""
    import clip_arena.engines.ray_embed as ray_embed

    n, part_rows = 10, 2
    limits = FetchLimits(allow_private_urls=True)
    with LocalServer() as server:
        for i in range(n):
            server.routes[f"/{i}.png"] = Route(_png((25 * i, 40, 200 - 10 * i), size=(20 + i, 24)))
        meta = tmp_path / "meta.csv"
        meta.write_text("image_uri,image_id,caption\n" + "".join(f"{server.url(f'/{i}.png')},{i},image {i}\n"
                                                                 for i in range(n)))
        items = items_from_csv(meta)
        out = tmp_path / "ray" / "catalog.parquet"
        encoders = {"base": get_encoder(tiny_open_clip_spec)}
        for folder in ("ray", "local"):  # an existing catalog of the first three images, to be grown
            build_catalog(items[:3], encoders, tmp_path / folder / "catalog.parquet", batch_size=2, workers=0,
                          limits=limits, progress=False)
        real_build = ray_embed.build_catalog

        def dies_after_one_part(*args, encode, **kwargs):
            def first_part_only(new_items):
                stream = encode(new_items)
                try:
                    yield next(stream)
                    raise KeyboardInterrupt
                finally:
                    stream.close()

            return real_build(*args, encode=first_part_only, **kwargs)

        monkeypatch.setattr(ray_embed, "build_catalog", dies_after_one_part)
        with pytest.raises(KeyboardInterrupt):
            build_catalog_ray(items, {"base": tiny_open_clip_spec}, out, RayOptions(part_rows=part_rows),
                              batch_size=2, limits=limits, progress=False)
        monkeypatch.setattr(ray_embed, "build_catalog", real_build)
        assert len(read_catalog(out)) == 3  # the catalog is replaced only by a finished job
        finished = {int(p.name.split("-")[1]) for p in (tmp_path / "ray" / "catalog.parquet.parts").glob("part-*.npz")}
        assert 0 in finished and len(finished) < (n - 3 + part_rows - 1) // part_rows
        hits_before = len(server.hits)
        report = build_catalog_ray(items, {"base": tiny_open_clip_spec}, out, RayOptions(part_rows=part_rows),
                                   batch_size=2, limits=limits, progress=False)
        refetched = {(int(h.strip("/").split(".")[0]) - 3) // part_rows for h in server.hits[hits_before:]}
        assert (report.added, report.kept) == (n - 3, 3) and refetched and not refetched & finished
        local = build_catalog(items, encoders, tmp_path / "local" / "catalog.parquet", batch_size=2, workers=0,
                              limits=limits, progress=False)
        assert (local.added, local.kept) == (n - 3, 3)
    _same_catalog(tmp_path / "local" / "catalog.parquet", out, ["base"])


def _cli(*args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "clip_arena.cli.main", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def _ray_processes_of(session_root: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if session_root in line]


def test_a_killed_score_job_resumes_without_redoing_finished_parts(tmp_path, tiny_open_clip_spec):
    """A real `clip-arena score --engine ray` process is killed (SIGKILL, Ray and all) mid-run; the
    re-run with --resume fetches none of the finished parts' images again and writes the local file."""
    n = 8
    with LocalServer() as server:
        for i in range(n):  # one distinct image per row, so a fetch names its row; later rows slow
            server.routes[f"/{i}.png"] = Route(_png((20 * i, 50, 90)), delay_s=0.0 if i < 4 else 1.5)
        path = tmp_path / "pairs.csv"
        path.write_text("image,caption\n" + "".join(f"{server.url(f'/{i}.png')},caption {i}\n" for i in range(n)))
        out = tmp_path / "scored.csv"
        ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        env = dict(os.environ, PYTHONPATH=ROOT, RAY_TMPDIR=ray_tmp)
        args = ["score", str(path), "-o", str(out), "--model", tiny_open_clip_spec, "--allow-private-urls",
                "--engine", "ray", "--actors", "1", "--part-rows", "2"]
        proc = _cli(*args, env=env)
        parts = tmp_path / "scored.csv.parts"
        deadline = time.monotonic() + 240
        while len(list(parts.glob("part-*.csv"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and every Ray process it started
        proc.communicate()
        finished = sorted(p.name for p in parts.glob("part-*.csv"))
        assert 2 <= len(finished) < n // 2 and not out.exists()
        done_rows = {int(name.split("-")[1]) * 2 + k for name in finished for k in (0, 1)}
        hits_before = len(server.hits)
        for route in server.routes.values():
            route.delay_s = 0.0

        proc = _cli(*args, "--resume", env=env)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert f"({len(done_rows)} already done)" in stdout
        refetched = {int(h.strip("/").split(".")[0]) for h in server.hits[hits_before:]}
        assert refetched and not refetched & done_rows  # no finished part was redone
    options = BatchOptions(limits=FetchLimits(allow_private_urls=True))
    with LocalServer() as again:  # the local engine on the same rows, for the expected file
        for i in range(n):
            again.routes[f"/{i}.png"] = Route(_png((20 * i, 50, 90)))
        local_in = tmp_path / "local_pairs.csv"
        local_in.write_text(path.read_text().replace(f":{server.port}/", f":{again.port}/"))
        score_csv(local_in, tmp_path / "local.csv", get_encoder(tiny_open_clip_spec), options)
    ours, theirs = _read(out), _read(tmp_path / "local.csv")
    assert len(ours) == n + 1
    _same_scored([r[1:] for r in ours], [r[1:] for r in theirs])  # the URLs' ports differ
    assert _ray_processes_of(ray_tmp) == []  # nothing of Ray left running
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_engine_ray_without_ray_says_how_to_install_and_local_never_imports_it(tmp_path, tiny_open_clip_spec):
    blocker = tmp_path / "no_ray"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    Image.new("RGB", (20, 20), "green").save(tmp_path / "a.png")
    (tmp_path / "in.csv").write_text("image,caption\na.png,green\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), ROOT]))
    base = ["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--model", tiny_open_clip_spec]
    proc = _cli(*base, "--engine", "ray", env=env)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        "clip-arena score: error: --engine ray needs Ray, which is not installed: pip install 'clip-arena[ray]'.")
    proc = _cli("embed", "--images", str(tmp_path), "--method", f"base={tiny_open_clip_spec}", "-o",
                str(tmp_path / "c.parquet"), "--engine", "ray", env=env)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "pip install 'clip-arena[ray]'" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "c.parquet").exists()
    proc = _cli(*base, env=env)  # the default engine works where `import ray` would fail
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert _read(tmp_path / "out.csv")[1][-1] == ""


def test_bad_engine_options_are_one_sentence(tmp_path):
    (tmp_path / "in.csv").write_text("image,caption\na.png,green\n")
    proc = run_cli("score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), "--engine", "ray",
                   "--actors", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--actors and --part-rows must be at least 1" in proc.stderr
    proc = run_cli("embed", "--images", str(tmp_path), "--method", "base=demo:base", "-o", str(tmp_path / "c.parquet"),
                   "--actors", "4", "--ray-address", "auto")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "clip-arena embed: error: --ray-address, --actors only apply with --engine ray.")


def test_actors_that_cannot_start_here_are_refused_instead_of_waiting(local_ray, hostile_csv, tmp_path,
                                                                       tiny_open_clip_spec):
    path, root, _ = hostile_csv
    options = BatchOptions(image_roots=[str(root)])
    with pytest.raises(UserError, match=r"--gpus-per-actor 1 need 1 GPUs; this machine has 0"):
        score_csv_ray(path, tmp_path / "o.csv", tiny_open_clip_spec, options, RayOptions(gpus_per_actor=1))
    with pytest.raises(UserError, match=r"--actors 3 need 3 CPUs here; this machine gives Ray 2"):
        build_catalog_ray(items_from_folder(root), {"base": tiny_open_clip_spec}, tmp_path / "c.parquet",
                          RayOptions(actors=3), progress=False)
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "c.parquet").exists()


def test_prepare_shards_read_back_with_ray_data(local_ray, tmp_path):
    """prepare's shards (several, capped by count) read back whole by Ray Data's read_webdataset: every
    sample once, with its image, caption and metadata (the local engine's writer; the Ray engine's
    byte-for-byte equality is tests/test_prepare_ray.py, a slow test, and bench/bench_prepare.py --ray)."""
    import json

    import ray

    from clip_arena.prepare.shards import sample, write_shards

    rows = [{"image_id": f"p{i}", "clean_title": f"Oak chair {i}", "colour": "red", "colour_confidence": 0.9}
            for i in range(7)]
    images = [Image.new("RGB", (30 + i, 20), (40 * i, 90, 200)) for i in range(7)]
    written = write_shards((sample(r, im, 32, "{clean_title} in {colour}") for r, im in zip(rows, images)),
                           tmp_path / "train", max_count=3)
    assert [s["samples"] for s in written] == [3, 3, 1]
    files = [str(tmp_path / "train" / s["name"]) for s in written]
    got = ray.data.read_webdataset(files, decoder=None).take_all()
    assert sorted(r["__key__"] for r in got) == sorted(f"p{i}" for i in range(7))
    for r in got:
        meta = json.loads(r["json"])
        assert r["txt"].decode() == f"{meta['clean_title']} in red"
        assert Image.open(io.BytesIO(r["jpg"])).size == (32, 32)
