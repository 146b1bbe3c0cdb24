"""The fast paths into the image tower (issue 18), on the CPU:
- uint8 pixels out of the workers, normalised on the device, give the model's own input;
- JPEGs decoded reduced in the DCT keep the vectors;
- the GPU path (JPEG bytes decoded by torchvision's decoder on the model's device; here the CPU,
  the same code) falls back to the CPU loader per image: non-JPEG, corrupt, truncated, CMYK,
  EXIF-rotated, or a JPEG the device decoder refuses; one bad file never fails its batch."""

import copy
import csv
import io

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision import transforms as T

from clip_arena.analyzer.batch import BatchOptions, score_csv
from clip_arena.analyzer.images import load_image
from cli_runner import run_cli
from clip_arena.core.settings import FetchLimits
from clip_arena.index.catalog import read_catalog
from clip_arena.index.embed import Decoding, build_catalog, items_from_folder
from clip_arena.models import device_decode, get_encoder
from clip_arena.models.pixels import preprocess_of


def photo(width=640, height=480, seed=0) -> Image.Image:
    """Smooth shapes plus noise: decodes and resizes like a photo, unlike flat colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (np.sin(xx / (9 + seed)) + np.cos(yy / 13)) * 60 + 128
    rgb = np.stack([base, np.roll(base, 40 + seed, axis=1), base[::-1]], axis=-1) + rng.normal(0, 10, (height, width, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def jpeg_bytes(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def demo():
    return get_encoder("demo:finetuned")


@pytest.fixture
def folder_of_every_kind(tmp_path):
    """One file of each kind the device decoder must take or hand back, and what each should give."""
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "rgb.jpg").write_bytes(jpeg_bytes(photo(320, 240, 1)))
    (folder / "grey.jpg").write_bytes(jpeg_bytes(photo(200, 260, 2).convert("L")))
    (folder / "progressive.jpg").write_bytes(jpeg_bytes(photo(300, 200, 3), progressive=True))
    (folder / "cmyk.jpg").write_bytes(jpeg_bytes(photo(240, 180, 4).convert("CMYK")))
    exif = Image.Exif()
    exif[device_decode.EXIF_ORIENTATION] = 6  # stored on its side: shown rotated 90 degrees
    (folder / "rotated.jpg").write_bytes(jpeg_bytes(photo(300, 150, 5), exif=exif.tobytes()))
    rgba = photo(120, 90, 6).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    good = jpeg_bytes(photo(320, 240, 7))
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "corrupt.jpg").write_bytes(good[:3] + b"not a jpeg at all" * 20)
    return folder


# -- uint8 pixels, normalised on the device ------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 300), height=st.integers(1, 300), seed=st.integers(0, 2**16))
@example(width=2, height=201, seed=0)  # upsampled 32x: the crop's box alone gave whole rows 15 levels off
def test_uint8_pixels_normalised_are_the_open_clip_transforms_output(width, height, seed):
    encoder = get_encoder("demo:base")
    image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8))
    fast = encoder.preprocess.normalise(encoder.fast_transform(image).unsqueeze(0), torch.float32)[0]
    reference = encoder.image_transform(image)
    assert fast.shape == reference.shape
    # Resampling only the cropped region puts a pixel at most one level of 255 off, rarely
    one_level = 1 / 255 / min(encoder.preprocess.std) + 1e-5
    differ = (fast - reference).abs()
    assert differ.max() <= one_level and (differ > 1e-5).float().mean() <= 0.01


def test_hf_clip_preprocessing_is_recognised_and_gives_the_same_vectors(tiny_hf_spec):
    encoder = get_encoder(tiny_hf_spec)
    assert encoder.preprocess is not None and encoder.preprocess.floor_crop  # HF crops at (h - S) // 2
    images = [photo(w, h, i) for i, (w, h) in enumerate([(120, 91), (47, 200), (64, 64), (301, 33)])]
    reference = encoder.encode_pixels(torch.stack([encoder.image_transform(im) for im in images]))
    fast = encoder.encode_pixels(torch.stack([encoder.fast_transform(im) for im in images]))
    assert all(cosine(a, b) > 0.9999 for a, b in zip(reference, fast))


def test_a_model_outside_the_clip_recipe_keeps_its_own_transform(tmp_path, tiny_open_clip_spec):
    encoder = copy.copy(get_encoder(tiny_open_clip_spec))  # the registry's copy is shared by other tests
    squash = T.Compose([T.Resize((32, 32)), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])  # no crop
    encoder.image_transform = squash
    encoder.__dict__.pop("_preprocess", None)  # recognised again from the new transform
    assert preprocess_of(encoder) is None
    own = get_encoder(tiny_open_clip_spec).image_transform.transforms
    encoder.image_transform = T.Compose([T.Resize((32, 32), interpolation=T.InterpolationMode.BICUBIC), *own[1:]])
    encoder.__dict__.pop("_preprocess", None)
    assert preprocess_of(encoder) is None  # open_clip's "squash" resize: both sides to S, no crop to speak of
    encoder.image_transform = squash
    encoder.__dict__.pop("_preprocess", None)
    assert Decoding.plan({"m": encoder}).mode == "float"
    with pytest.raises(ValueError, match="float pixels"):
        encoder.encode_pixels(torch.zeros((1, 3, 32, 32), dtype=torch.uint8))
    folder = tmp_path / "images"
    folder.mkdir()
    photo(90, 40).save(folder / "wide.jpg")
    report = build_catalog(items_from_folder(folder), {"m": encoder}, tmp_path / "c.parquet", workers=0,
                           progress=False)
    assert report.added == 1
    stored = read_catalog(tmp_path / "c.parquet").embeddings("m")[0]
    direct = encoder.encode_images([load_image(folder / "wide.jpg")])[0]
    assert cosine(stored, direct) > 0.99999  # the squash, not a centre crop


def test_jpegs_decoded_reduced_in_the_dct_keep_their_vectors(tmp_path, demo):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        (folder / f"big{i}.jpg").write_bytes(jpeg_bytes(photo(1600, 1200, i)))
    out = tmp_path / "c.parquet"
    build_catalog(items_from_folder(folder), {"m": demo}, out, workers=0, progress=False, decode="cpu")
    catalog = read_catalog(out)
    for row, image_id in enumerate(catalog.ids):
        exact = demo.encode_images([load_image(folder / image_id)])[0]  # full decode, the model's transform
        assert cosine(catalog.embeddings("m")[row], exact) > 0.995


# -- the GPU path, exercised on the CPU ----------------------------------------------------------

def test_which_files_go_to_the_device_decoder(folder_of_every_kind):
    limits = FetchLimits()
    decodable = {p.name: device_decode.device_decodable(p.read_bytes(), limits)
                 for p in folder_of_every_kind.iterdir()}
    assert decodable == {"rgb.jpg": True, "grey.jpg": True, "progressive.jpg": True, "cmyk.jpg": False,
                         "rotated.jpg": False, "alpha.png": False, "truncated.jpg": False, "corrupt.jpg": False}
    small = FetchLimits(max_pixels=320 * 240 - 1)  # over the pixel cap: the CPU loader refuses it
    assert not device_decode.device_decodable((folder_of_every_kind / "rgb.jpg").read_bytes(), small)
    strip = jpeg_bytes(photo(9 * 40, 40))  # past the aspect the device resizes whole: the CPU crops first
    assert not device_decode.device_decodable(strip, limits)
    assert device_decode.device_decodable(jpeg_bytes(photo(8 * 40, 40)), limits)


def test_the_device_holds_full_size_decodes_within_the_decode_pixel_budget(monkeypatch, demo):
    pre = [demo.preprocess]
    datas = [jpeg_bytes(photo(200, 150, i)) for i in range(5)]  # 30,000 pixels each
    real, calls = device_decode._decode_jpegs, []
    monkeypatch.setattr(device_decode, "_decode_jpegs", lambda ts, dev: calls.append(len(ts)) or real(ts, dev))
    results = {}
    for budget in (0, 70_000):  # 0: no budget
        limits = FetchLimits(decode_pixels=budget)
        items = [device_decode.prepare(d, f"im{i}", limits, pre) for i, d in enumerate(datas)]
        results[budget] = device_decode.decode_on_device(items, pre, "cpu", limits)
    assert calls == [5, 2, 2, 1]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(results[0], results[70_000]))


@pytest.mark.parametrize("workers", [0, 2])
def test_gpu_decoding_embeds_what_the_cpu_path_embeds_and_skips_what_it_skips(tmp_path, demo, folder_of_every_kind,
                                                                              workers, monkeypatch):
    items = items_from_folder(folder_of_every_kind)
    real, on_device = device_decode._decode_jpegs, []
    monkeypatch.setattr(device_decode, "_decode_jpegs", lambda ts, dev: on_device.append(len(ts)) or real(ts, dev))
    reports, catalogs = {}, {}
    for mode in ("cpu", "gpu"):
        out = tmp_path / f"{mode}.parquet"
        reports[mode] = build_catalog(items, {"m": demo}, out, workers=workers, batch_size=3, progress=False,
                                      decode=mode)
        catalogs[mode] = read_catalog(out)
    assert sum(on_device) == 3  # rgb, grey and progressive went to the device decoder
    assert sorted(reports["gpu"].failed) == sorted(reports["cpu"].failed)
    assert sorted((i, kind) for i, kind, _ in reports["gpu"].failed) == [("corrupt.jpg", "not_image"),
                                                                         ("truncated.jpg", "truncated")]
    assert catalogs["gpu"].ids == catalogs["cpu"].ids and len(catalogs["gpu"].ids) == 6
    gpu, cpu = catalogs["gpu"].embeddings("m"), catalogs["cpu"].embeddings("m")
    for row, image_id in enumerate(catalogs["cpu"].ids):
        if image_id in ("cmyk.jpg", "rotated.jpg", "alpha.png"):  # handed back to the CPU loader: the same
            np.testing.assert_allclose(gpu[row], cpu[row], atol=1e-6)
        else:  # torch's antialiased bicubic on the full image against PIL's on a DCT-reduced one
            assert cosine(gpu[row], cpu[row]) > 0.99, image_id
    rotated = catalogs["gpu"].ids.index("rotated.jpg")
    upright = demo.encode_images([load_image(folder_of_every_kind / "rotated.jpg")])[0]  # EXIF applied
    sideways = demo.encode_images([Image.open(folder_of_every_kind / "rotated.jpg").convert("RGB")])[0]
    assert cosine(gpu[rotated], upright) > 0.999 > cosine(gpu[rotated], sideways)


def test_a_jpeg_the_device_decoder_refuses_is_decoded_on_the_cpu_and_the_batch_goes_on(monkeypatch, demo):
    limits = FetchLimits()
    pre = [demo.preprocess]
    datas = [jpeg_bytes(photo(200, 150, i)) for i in range(3)]
    items = [device_decode.prepare(d, f"im{i}.jpg", limits, pre) for i, d in enumerate(datas)]
    assert all(isinstance(it, device_decode.EncodedJpeg) for it in items)
    refused = items[1].data.tobytes()
    real = device_decode._decode_jpegs
    calls = []

    def picky(tensors, device):  # nvJPEG failing on one file fails the whole batched call
        calls.append(len(tensors))
        if any(t.numpy().tobytes() == refused for t in tensors):
            raise RuntimeError("nvjpeg: unsupported")
        return real(tensors, device)

    monkeypatch.setattr(device_decode, "_decode_jpegs", picky)
    out = device_decode.decode_on_device(items, pre, "cpu", limits)
    assert calls == [3, 1, 1, 1]  # the batch, then one by one
    assert all(isinstance(o, list) and o[0].shape == (3, demo.preprocess.size, demo.preprocess.size) for o in out)
    on_cpu = device_decode.cpu_pixels(datas[1], "im1.jpg", limits, pre)[0].float()
    assert torch.equal(out[1][0], on_cpu)  # the refused one came from the CPU loader


def test_uint8_and_device_decoded_batches_encode_like_the_model_transform(demo):
    image = photo(256, 256, 9)
    reference = demo.encode_images([image])[0]
    uint8 = demo.encode_pixels(demo.fast_transform(image).unsqueeze(0))[0]
    decoded = device_decode.decode_on_device([device_decode.prepare(jpeg_bytes(image, subsampling=0), "x", FetchLimits(),
                                                                    [demo.preprocess])], [demo.preprocess], "cpu",
                                             FetchLimits())
    on_device = demo.encode_raw(decoded[0][0].unsqueeze(0))[0]
    assert cosine(uint8, reference) > 0.99999
    assert cosine(on_device, reference) > 0.99  # after a JPEG round trip


# -- the scorer and the commands -----------------------------------------------------------------

LIMITED_RUN = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (5 << 30, 5 << 30))  # 5 GB of address space, as `ulimit -v`
from clip_arena.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("mode", ["cpu", "gpu"])
def test_a_65000_pixel_strip_is_scored_and_embedded_in_bounded_memory(tmp_path, mode):
    """Resizing the whole strip before the crop took 3.2 GB with the demo model (39 GB with a
    224-pixel model), failing the run with --decode gpu and the whole embed in both modes."""
    import os
    import subprocess
    import sys

    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.random.default_rng(5).integers(0, 255, (1, 65000, 3), np.uint8)).save(tmp_path / "imgs/strip.jpg")
    (tmp_path / "imgs/ok.jpg").write_bytes(jpeg_bytes(photo(120, 90)))
    (tmp_path / "pairs.csv").write_text("image,caption\nimgs/strip.jpg,a strip\nimgs/ok.jpg,a photo\n")
    from conftest import with_project

    env = with_project({**os.environ, "MALLOC_ARENA_MAX": "2"})  # glibc's arenas' address space varies with threads
    run = lambda *args: subprocess.run([sys.executable, "-c", LIMITED_RUN, *args], capture_output=True, text=True,  # noqa: E731
                                       timeout=300, cwd=tmp_path, env=env)
    scored = run("score", "pairs.csv", "-o", "out.csv", "--model", "demo:base", "--decode", mode)
    assert scored.returncode == 0, scored.stderr[-2000:]
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["error"] for r in rows] == ["", ""] and all(r["cosine"] for r in rows)
    embedded = run("embed", "--images", "imgs", "--method", "m=demo:base", "-o", "c.parquet", "--decode", mode,
                   "--workers", "0")
    assert embedded.returncode == 0, embedded.stderr[-2000:]
    assert "2 images (2 new, 0 kept), 0 skipped" in embedded.stdout

def test_score_with_gpu_decoding_gives_the_cpu_paths_scores_and_errors(tmp_path, demo, folder_of_every_kind):
    source = tmp_path / "pairs.csv"
    names = sorted(p.name for p in folder_of_every_kind.iterdir())
    with open(source, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        w.writerows([[n, f"a picture called {n}"] for n in names] + [["missing.jpg", "nothing"]])
    results = {}
    for mode in ("cpu", "gpu"):
        out = tmp_path / f"{mode}.csv"
        options = BatchOptions(image_roots=[str(folder_of_every_kind)], decode=mode, batch_size=4)
        report = score_csv(source, out, demo, options)
        assert (report.rows, report.scored) == (9, 6)
        with open(out, newline="") as f:
            results[mode] = list(csv.DictReader(f))
    for cpu, gpu in zip(results["cpu"], results["gpu"]):
        assert cpu["error"].split(":")[0] == gpu["error"].split(":")[0]
        if cpu["cosine"]:
            assert float(gpu["cosine"]) == pytest.approx(float(cpu["cosine"]), abs=0.02), cpu["image"]
    assert {r["image"]: r["error"].split(":")[0] for r in results["gpu"] if r["error"]} == {
        "corrupt.jpg": "not_image", "truncated.jpg": "truncated", "missing.jpg": "not_found"}


def test_decode_option_on_the_commands(tmp_path, folder_of_every_kind):
    out = tmp_path / "c.parquet"
    proc = run_cli("embed", "--images", str(folder_of_every_kind), "--method", "m=demo:base", "-o", str(out),
                   "--decode", "gpu", "--workers", "0")
    assert proc.returncode == 0, proc.stderr
    assert "6 images (6 new, 0 kept), 2 skipped" in proc.stdout
    assert "note: --decode gpu without CUDA" in proc.stderr  # it works, and says it is not on a GPU
    bad = run_cli("embed", "--images", str(folder_of_every_kind), "--method", "m=demo:base", "-o", str(out),
                  "--decode", "fpga")
    assert bad.returncode == 2 and "invalid choice: 'fpga'" in bad.stderr and "Traceback" not in bad.stderr
