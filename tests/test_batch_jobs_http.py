"""Batch jobs through the app's HTTP API (gradio_client), as browsers drive them: a small batch does
not wait behind a long one, and the long one can be cancelled, keeping the rows it scored."""

import time

import pytest
from PIL import Image

from http_server import LocalServer, Route


def _png():
    import io

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def slow_images():
    body = _png()
    with LocalServer() as server:
        for i in range(2000):
            server.routes[f"/slow/{i}.png"] = Route(body, delay_s=0.1)
        yield server


def test_a_small_batch_passes_a_long_one_which_can_be_cancelled(serve_app, slow_images, tmp_path, tiny_open_clip_spec):
    from gradio_client import Client, handle_file

    long_csv = tmp_path / "long.csv"
    long_csv.write_text("image,caption\n" + "".join(f"{slow_images.url(f'/slow/{i}.png')},red\n" for i in range(2000)))
    Image.new("RGB", (16, 16), "blue").save(tmp_path / "blue.png")
    short_csv = tmp_path / "short.csv"
    short_csv.write_text("image,caption\nblue.png,blue\nblue.png,a blue square\n")
    url = serve_app("--model", tiny_open_clip_spec, env={"CLIP_ARENA_ALLOW_PRIVATE_URLS": "1"})
    alice, bob = Client(url, verbose=False), Client(url, verbose=False)
    long_job = alice.submit(handle_file(str(long_csv)), None, None, tiny_open_clip_spec, api_name="/on_run")
    while len(slow_images.hits) < 50:  # the long batch is fetching
        time.sleep(0.1)
    _, _, summary, _ = bob.predict(handle_file(str(short_csv)), None, None, tiny_open_clip_spec, api_name="/on_run")
    assert "2 rows, 2 scored" in summary
    assert not long_job.done()  # the small batch finished while the long one was still running
    alice.predict(api_name="/on_cancel")
    _, _, summary, scored = long_job.result(timeout=120)
    assert summary.startswith("**Cancelled:**")
    done = int(summary.split("Cancelled after ")[1].split(" rows")[0].replace(",", ""))
    assert 0 < done < 2000 and len(slow_images.hits) < 2000
    with open(scored, encoding="utf-8") as f:
        assert sum(1 for _ in f) == done + 1
