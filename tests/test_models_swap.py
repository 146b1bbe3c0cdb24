"""Hot swap of the models file (clip_arena.models.live): atomic, released, kept on error; and a running
app that changes model under 16 clients without a restart or a failed request."""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, free_port, wait_http
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings
from clip_arena.models import live as live_models
from clip_arena.models import registry

BASE, TUNED = "demo:base", "demo:finetuned"


def write(path, text: str) -> None:
    """As a ConfigMap changes a mounted file: a new file put in place at once."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@pytest.fixture
def models_file(tmp_path, monkeypatch):
    monkeypatch.setattr(live_models, "_ACTIVE", {})  # each test its own live set
    path = tmp_path / "models.yaml"
    write(path, f"models:\n  a: {{spec: '{BASE}', default: true}}\n  b: {{spec: '{TUNED}', browser: false}}\n")
    return path


def test_a_request_keeps_its_snapshot_and_a_removed_model_is_released(models_file):
    models = live_models.LiveModels(models_file, environ={})
    assert models.reload("start")
    during = models.snapshot  # a request in flight took this one
    removed = weakref.ref(during.handles["b"].encoder)
    # values the tabs compute once per encoder (Similarity's reference captions, Analyze's labels, the
    # effectiveness features' width) must not keep it alive either (an lru_cache did: fails before)
    from clip_arena.analyzer.content.labels import _label_vectors
    from clip_arena.analyzer.similarity import reference_vectors
    from clip_arena.effectiveness.features import embedding_dim

    for per_encoder_value in (reference_vectors, _label_vectors, embedding_dim):
        per_encoder_value(during.handles["b"].encoder)
    write(models_file, f"models:\n  a: {BASE}\n")
    assert models.reload("test")
    assert list(models.snapshot.handles) == ["a"] and list(during.handles) == ["a", "b"]
    assert during.handles["b"].encoder.encode_texts(["still answers"]).shape[0] == 1  # the request ends well
    assert models.snapshot.handles["a"].encoder is during.handles["a"].encoder  # nothing loaded again
    del during
    gc.collect()
    assert removed() is None  # the removed model's memory is returned once no request holds it
    assert registry.cache_key(TUNED) not in registry._cache


def test_five_swaps_do_not_grow_memory(models_file):
    """The swap logic alone, with stand-in encoders of 8 MB each (the real registry: the test above)."""
    import tracemalloc

    class Weights:
        def __init__(self, spec):
            self.spec, self.weights = spec, np.ones(1_000_000)

    released = []
    models = live_models.LiveModels(models_file, environ={},
                                    loader=lambda spec, device, precision: (Weights(spec), (spec, "cpu", "fp32")),
                                    releaser=lambda keys: released.extend(keys) or [k[0] for k in keys])
    gone, sizes = [], []
    tracemalloc.start()
    try:
        for i in range(6):
            write(models_file, f"models:\n  m: {TUNED if i % 2 else BASE}\n")
            assert models.reload(f"swap {i}")
            gone.append(weakref.ref(models.snapshot.handles["m"].encoder))
            gc.collect()
            sizes.append(tracemalloc.get_traced_memory()[0])
            assert all(ref() is None for ref in gone[:-1]), "a swapped-out model is still in memory"
    finally:
        tracemalloc.stop()
    assert max(sizes[1:]) - sizes[1] < 2_000_000  # one model's 8 MB held, never two or more
    assert len(released) == 5  # the registry was told to drop each one


def test_a_broken_file_or_model_keeps_the_old_set_and_says_why(models_file, capsys):
    models = live_models.LiveModels(models_file, environ={})
    models.reload("start")
    before = models.snapshot
    write(models_file, "models:\n  a: {spec: demo:base, colour: red}\n")
    assert not models.reload("test")
    assert models.snapshot is before
    assert "model 'a': unknown key 'colour'" in models.status.last_error
    assert "failed, the previous models stay in use" in capsys.readouterr().out
    assert any("last reload failed" in line and "colour" in line for line in models.status_lines())
    # A spec that parses but does not load: nothing half-applied either.
    write(models_file, f"models:\n  a: {BASE}\n  c: open_clip:{models_file.parent}/absent.json\n")
    assert not models.reload("test") and models.snapshot is before and "absent.json" in models.status.last_error
    write(models_file, f"models:\n  a: {{spec: '{BASE}', default: true}}\n  b: {{spec: '{TUNED}', browser: false}}\n")
    assert not models.reload("test")  # back as it was: no swap, and no error any more
    assert models.snapshot is before and models.status.last_error is None


def test_the_browser_gets_its_names_and_an_admin_alone_reloads(models_file):
    from clip_arena.analyzer.model_choice import browser_models, choose
    from clip_arena.analyzer.models_panel import ADMINS_ONLY, reload_as

    write(models_file, f"models:\n  a: {BASE}\n  b: {{spec: '{BASE}', browser: false}}\n")
    settings = Settings(models_file=str(models_file), hosted=True, admins=("alice",))
    models = live_models.start(settings, watch=False)
    chosen = choose(None, settings)  # the Analyze tab loads its spec under the --model rules: named, no stand-in
    assert browser_models(settings) == ["a"] and chosen.handle.name == "a"
    assert chosen.settings.model == BASE and chosen.settings.model_named
    with pytest.raises(UserError, match="'b' is not offered here"):
        choose("b", settings)  # browser: false, the command line only
    with pytest.raises(UserError, match="not offered"):
        choose(TUNED, settings)  # a spec is not a NAME: nothing the browser posts loads anything else
    write(models_file, f"models:\n  a: {BASE}\n  c: {{spec: '{BASE}', batch_size: 8}}\n")

    class Request:
        def __init__(self, name):
            self.username = name

    assert reload_as(settings, Request("bob")) == ADMINS_ONLY and browser_models(settings) == ["a"]
    status = reload_as(settings, Request("alice"))
    assert "c: demo:base" in status and browser_models(settings) == ["a", "c"]
    write(models_file, "models:\n  a: {spec: demo:base\n")
    status = reload_as(settings, Request("alice"))  # a long error: a paragraph that wraps, not a code block
    assert "```" not in status and status.split("\n\n")[-1].startswith("last reload failed") and "line 3" in status
    assert models.status.reloads == 1


def test_serve_refuses_to_start_on_a_bad_models_file(tmp_path, monkeypatch):
    from clip_arena.cli.serve import start_models

    monkeypatch.setattr(live_models, "_ACTIVE", {})
    bad = tmp_path / "models.yaml"
    write(bad, "models:\n  a: {spec: demo:base, precision: fp8}\n")
    with pytest.raises(UserError, match=r"model 'a': key 'precision' must be one of fp32, fp16, bf16, not 'fp8'"):
        start_models(Settings(models_file=str(bad), port=free_port()))
    plain = Settings()
    assert start_models(plain) == (plain, None)  # no models file: --model's rules, as before


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_reloads(models_file):
    models = live_models.LiveModels(models_file, environ={})
    models.reload("start")
    previous = signal.getsignal(signal.SIGHUP)
    try:
        assert live_models.install_sighup(models)
        write(models_file, f"models:\n  z: {BASE}\n")
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 10
        while list(models.snapshot.handles) != ["z"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(models.snapshot.handles) == ["z"]
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- the running app ----------------------------------------------------------------------------
CAPTIONS = ["a red square", "a smiling face"]
ANSWER = re.compile(r"model `live \((demo:\w+)\)`")


def expected_cosines(image) -> dict[str, list[float]]:
    from clip_arena.analyzer.similarity import score_image_texts

    return {spec: sorted(round(r.cosine, 4) for r in score_image_texts(registry.get_encoder(spec), image, CAPTIONS))
            for spec in (BASE, TUNED)}


def call(http, url: str, api: str, *data):
    """One request through the app's HTTP API, as curl makes it: POST the inputs, then read the result's
    event stream (lighter than gradio_client, whose own CPU on these 2 cores halved the requests served)."""
    posted = http.post(f"{url}gradio_api/call/{api}", json={"data": list(data)})
    posted.raise_for_status()
    with http.stream("GET", f"{url}gradio_api/call/{api}/{posted.json()['event_id']}") as stream:
        stream.raise_for_status()
        text = "".join(stream.iter_text())
    event, _, payload = text.strip().rpartition("event: ")[2].partition("\ndata: ")
    assert event == "complete", text[-500:]
    return json.loads(payload)


def test_a_running_app_swaps_models_under_16_clients_without_a_failed_request(tmp_path):
    import httpx

    models = tmp_path / "models.yaml"
    write(models, f"models:\n  live: {BASE}\n")
    picture = tmp_path / "red.png"
    Image.new("RGB", (64, 64), (210, 30, 30)).save(picture)
    port = free_port()
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--models", str(models)],
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
                                 "CLIP_ARENA_MODELS_POLL_S": "0.1"})
    url = f"http://127.0.0.1:{port}/"
    first = httpx.Client(timeout=60)
    try:
        expected = expected_cosines(Image.open(picture))  # while the server starts
        wait_http(url, proc=proc)
        with open(picture, "rb") as f:  # uploaded once, as a script would; every request still decodes it
            uploaded = first.post(f"{url}gradio_api/upload", files={"files": f}).json()[0]
        image = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}

        def score(client) -> str:
            """One request; the spec that answered, checked against that model's own numbers."""
            table, _, summary = call(client, url, "on_score", image, "", "\n".join(CAPTIONS), "live")
            spec = ANSWER.search(summary).group(1)
            got = sorted(row[2] for row in table["data"])
            assert np.allclose(got, expected[spec], atol=2e-4), (spec, got, expected)  # wholly one model
            return spec

        assert score(first) == BASE
        answers, failures, stop = [], [], threading.Event()

        ready = []

        def hammer():
            try:
                client = httpx.Client(timeout=60)  # its own connections
            except Exception as err:  # noqa: BLE001 - counted
                failures.append(repr(err))
                return
            ready.append(client)
            with client:
                while not stop.is_set():
                    try:
                        started = time.monotonic()
                        answers.append((started, score(client)))
                    except Exception as err:  # noqa: BLE001 - every failure is counted
                        failures.append(repr(err))

        threads = [threading.Thread(target=hammer) for _ in range(16)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(ready) + len(failures) < 16 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(ready) == 16, failures
        seen = 0
        for flip in range(10):  # the configuration flips 10 times while they score
            spec, written = (TUNED if flip % 2 == 0 else BASE), time.monotonic()
            write(models, f"models:\n  live: {spec}\n")
            deadline = written + 30

            def swapped():  # a request sent after the change answered by the new model: no restart
                return any(at > written and answer == spec for at, answer in answers[-64:])

            while not swapped() and time.monotonic() < deadline:
                time.sleep(0.05)
            seen += swapped()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert failures == [] and seen == 10 and len(answers) >= 16
        assert {spec for _, spec in answers} == {BASE, TUNED}
        assert score(first) == BASE  # after the last swap, the new model answers: no restart

        write(models, "models:\n  live: {spec: demo:finetuned, colour: red}\n")  # broken: kept, and said
        time.sleep(0.5)
        assert score(first) == BASE
        status = call(first, url, "reload_models")[0]
        assert "last reload failed" in status and "unknown key 'colour'" in status and "live: demo:base" in status
        assert proc.poll() is None
    finally:
        first.close()
        proc.terminate()
        proc.wait(timeout=15)
        log.seek(0)
        text = log.read()
        log.close()
    assert text.count("models: the models file changed: now live=") >= 10, text[-3000:]
    assert "unknown key 'colour'" in text


def test_the_pickers_offer_the_live_names_on_their_next_render(models_file):
    import gradio as gr

    from clip_arena.analyzer.widgets import model_picker

    settings = Settings(models_file=str(models_file))
    models = live_models.start(settings, watch=False)
    with gr.Blocks() as demo:
        picker = model_picker(settings, "Model", "sim-model", fusions=True)
    assert picker.choices == [("a", "a")] and picker.value == "a"
    on_load = next(f for f in demo.fns.values() if picker in f.outputs).fn  # runs on each page load
    write(models_file, f"models:\n  c: {BASE}\n  a: {BASE}\n  d: {{spec: '{BASE}', default: true}}\n")
    assert models.reload("test")
    update = on_load()
    assert [c[0] if isinstance(c, tuple) else c for c in update.choices] == ["c", "a", "d"] and update.value == "d"
    # A page left open: opening its picker reads the list again, and leaves the choice as it is.
    on_focus = next(f for f in demo.fns.values() if (picker._id, "focus") in f.targets).fn
    write(models_file, f"models:\n  a: {BASE}\n")
    assert models.reload("test")
    update = on_focus()
    assert [c[0] if isinstance(c, tuple) else c for c in update.choices] == ["a"] and "value" not in update.constructor_args


def test_batch_scores_with_the_named_model_and_says_which(models_file, tmp_path):
    import pandas as pd

    from clip_arena.analyzer.batch_view import run_batch

    Image.new("RGB", (64, 64), (210, 30, 30)).save(tmp_path / "red.png")
    (tmp_path / "pairs.csv").write_text("url,title\nred.png,a red square\n")
    write(models_file, f"models:\n  a: {BASE}\n  small: {{spec: '{BASE}', batch_size: 1}}\n")
    settings = Settings(models_file=str(models_file), image_roots=[str(tmp_path)])
    live_models.start(settings, watch=False)
    _, _, summary, output = run_batch(str(tmp_path / "pairs.csv"), "url", "title", "small", settings)
    assert "Scored by model `small (demo:base)`." in summary
    want = score_cosine(BASE, tmp_path / "red.png", "a red square")
    assert float(pd.read_csv(output)["cosine"][0]) == pytest.approx(want, abs=1e-4)
    with pytest.raises(UserError, match="not offered"):
        run_batch(str(tmp_path / "pairs.csv"), "url", "title", BASE, settings)  # a spec is not one of the NAMEs


def score_cosine(spec, image_path, caption) -> float:
    from clip_arena.analyzer.similarity import score_image_texts

    return score_image_texts(registry.get_encoder(spec), Image.open(image_path).convert("RGB"), [caption])[0].cosine


def test_a_cached_model_answers_while_another_loads(monkeypatch):
    """A reload loads in the background: requests for models already in memory must not wait for it."""
    loading, release = threading.Event(), threading.Event()
    cached = object()
    monkeypatch.setitem(registry._cache, registry.cache_key(BASE), cached)

    def slow_load(spec, device, precision):
        loading.set()
        release.wait(30)
        return object()

    monkeypatch.setattr(registry, "load", slow_load)
    background = threading.Thread(target=registry.get_encoder, args=("open_clip:ViT-B-32",))
    background.start()
    assert loading.wait(10)
    got = []
    asker = threading.Thread(target=lambda: got.append(registry.get_encoder(BASE)))
    asker.start()
    asker.join(10)  # before this change it waited behind the other load (the registry's one lock)
    release.set()
    background.join(30)
    registry._cache.pop(registry.cache_key("open_clip:ViT-B-32"), None)
    assert got == [cached]


def stand_in_models(path) -> live_models.LiveModels:
    """The reload logic alone: encoders are stand-ins (nothing is loaded)."""
    return live_models.LiveModels(path, environ={}, loader=lambda spec, device, precision: (object(), (spec,)),
                                  releaser=lambda keys: [])


def test_a_fifo_at_the_models_path_fails_the_reload_at_once_and_the_file_put_back_reloads(models_file, capsys):
    models = stand_in_models(models_file)
    assert models.reload("start")
    good = models_file.read_text()
    models_file.unlink()
    os.mkfifo(models_file)  # opened plainly, the reload would wait for a writer forever, holding its lock
    attempt = threading.Thread(target=models.reload, args=("the models file changed",), daemon=True)
    attempt.start()
    attempt.join(30)
    assert not attempt.is_alive(), "the reload hung on the FIFO"
    out = capsys.readouterr().out
    assert (f"models: reload (the models file changed) failed, the previous models stay in use: Models file "
            f"{models_file} is not a regular file") in out
    models_file.unlink()
    write(models_file, good)  # put back as it was: nothing to swap, and the error is said to be gone
    assert not models.reload("SIGHUP") and models.status.last_error is None
    assert f"models: reloaded {models_file} (SIGHUP): unchanged, the earlier error is gone" in capsys.readouterr().out


def test_a_page_opened_before_a_reload_is_told_its_model_was_removed(models_file):
    write(models_file, f"models:\n  a: {BASE}\n  both: {TUNED}\n  c: {BASE}\n")
    models = stand_in_models(models_file)
    assert models.reload("start")
    write(models_file, f"models:\n  a: {BASE}\n  c: {{spec: '{BASE}', browser: false}}\n")
    assert models.reload("test")
    with pytest.raises(UserError) as err:
        models.snapshot.pick("both")
    assert str(err.value) == ("The models file changed since this page loaded: 'both' was removed; choose one of: a "
                              "(reload the page for the new list).")
    with pytest.raises(UserError, match="'c' is no longer offered in the browser; choose one of: a "):
        models.snapshot.pick("c")
    with pytest.raises(UserError, match="^Model 'never' is not offered here"):
        models.snapshot.pick("never")
