"""Safe image loading: every kind of bad or awkward input gets a clear, typed error."""

import io

import numpy as np
import pytest
from PIL import Image

import clip_arena.analyzer.fetch as fetch
from clip_arena.analyzer.images import load_image
from clip_arena.core.errors import ImageLoadError
from clip_arena.core.settings import FetchLimits
from http_server import Route, LocalServer

PRIVATE_OK = FetchLimits(allow_private_urls=True, timeout_s=2.0)


def _png_bytes(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (60, 30), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif.tobytes())
    assert load_image(path).size == (30, 60)


def test_alpha_is_composited_on_white(make_image):
    path = make_image("a.png", color=(255, 0, 0, 0), mode="RGBA")  # fully transparent red
    out = load_image(path)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("mode,color,fmt", [("CMYK", (0, 255, 255, 0), "JPEG"), ("L", 128, "PNG"),
                                            ("P", 3, "PNG"), ("1", 1, "PNG"), ("I;16", 40000, "PNG")])
def test_modes_are_converted_to_rgb(make_image, mode, color, fmt):
    path = make_image(f"m.{fmt.lower()}", mode=mode, color=color, format=fmt)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (64, 48)


def test_first_frame_of_animation(tmp_path):
    frames = [Image.new("RGB", (20, 20), c) for c in ("red", "blue", "green")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    r, g, b = load_image(path).getpixel((5, 5))
    assert r > 200 and b < 50


def test_pixel_cap_refuses_decompression_bombs(make_image):
    path = make_image("big.png", size=(3000, 3000), color=0, mode="L")
    with pytest.raises(ImageLoadError) as info:
        load_image(path, FetchLimits(max_pixels=1_000_000))
    assert info.value.kind == "too_many_pixels" and "3000x3000" in str(info.value)


def test_truncated_and_non_image_files(tmp_path):
    data = _png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)), "JPEG")
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.jpg").write_text("this is not an image")
    with pytest.raises(ImageLoadError) as info:
        load_image(tmp_path / "cut.jpg")
    assert info.value.kind == "truncated"
    with pytest.raises(ImageLoadError) as info:
        load_image(tmp_path / "notes.jpg")
    assert info.value.kind == "not_image"
    with pytest.raises(ImageLoadError) as info:
        load_image(tmp_path / "missing.jpg")
    assert info.value.kind == "not_found"


def test_file_size_cap(make_image):
    path = make_image("n.png", size=(300, 300))
    with pytest.raises(ImageLoadError) as info:
        load_image(path, FetchLimits(max_bytes=100))
    assert info.value.kind == "too_large"


def test_image_roots_confine_local_paths(tmp_path, make_image):
    root = tmp_path / "root"
    root.mkdir()
    make_image("secret.png")  # outside the root
    inside = make_image("root/ok.png")
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    assert load_image("ok.png", image_roots=[root]).size == (64, 48)
    assert load_image(str(inside), image_roots=[root]).size == (64, 48)
    for escape in ("../secret.png", "link.png", str(tmp_path / "secret.png")):
        with pytest.raises(ImageLoadError) as info:
            load_image(escape, image_roots=[root])
        assert info.value.kind == "outside_roots", escape


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def test_url_fetch_with_opt_out(server):
    server.routes["/red.png"] = Route(_png_bytes(Image.new("RGB", (10, 8), "red")))
    assert load_image(server.url("/red.png"), PRIVATE_OK).size == (10, 8)


def test_private_addresses_are_refused_by_default(server):
    server.routes["/red.png"] = Route(_png_bytes(Image.new("RGB", (10, 8), "red")))
    with pytest.raises(ImageLoadError) as info:
        load_image(server.url("/red.png"))
    assert info.value.kind == "private_address" and "--allow-private-urls" in str(info.value)
    assert server.hits == []  # refused before any connection
    for url in ("http://localhost:1/x.png", "http://[::1]:1/x.png", "http://169.254.169.254/latest"):
        with pytest.raises(ImageLoadError, match="private"):
            load_image(url)


def test_every_redirect_hop_is_checked(server, monkeypatch):
    # Stand-in for the internet: 127.0.0.1 counts as public, every other address as private.
    monkeypatch.setattr(fetch, "_public", lambda ip: str(ip) == "127.0.0.1")
    server.routes["/hop"] = Route(status=302, headers={"Location": f"http://127.0.0.2:{server.port}/red.png"})
    with pytest.raises(ImageLoadError) as info:
        load_image(server.url("/hop"))
    assert info.value.kind == "private_address" and "127.0.0.2" in str(info.value)


def test_redirects_are_followed_and_capped(server):
    server.routes["/red.png"] = Route(_png_bytes(Image.new("RGB", (10, 8), "red")))
    server.routes["/a"] = Route(status=301, headers={"Location": "/red.png"})
    server.routes["/loop"] = Route(status=302, headers={"Location": "/loop"})
    assert load_image(server.url("/a"), PRIVATE_OK).size == (10, 8)
    with pytest.raises(ImageLoadError, match="redirects"):
        load_image(server.url("/loop"), PRIVATE_OK)


def test_http_errors_timeouts_schemes_and_size(server):
    server.routes["/slow.png"] = Route(b"x", delay_s=3)
    server.routes["/huge.png"] = Route(b"x" * 5000)
    server.routes["/page"] = Route(b"<html>hello</html>", headers={"Content-Type": "text/html"})
    cases = {
        server.url("/missing.png"): "http_error",
        server.url("/slow.png"): "timeout",
        server.url("/page"): "not_image",
        "ftp://example.com/a.png": "bad_scheme",
        "file:///etc/passwd": "bad_scheme",
    }
    for url, kind in cases.items():
        with pytest.raises(ImageLoadError) as info:
            load_image(url, FetchLimits(allow_private_urls=True, timeout_s=1.0))
        assert info.value.kind == kind, url
    with pytest.raises(ImageLoadError) as info:
        load_image(server.url("/huge.png"), FetchLimits(allow_private_urls=True, max_bytes=1000))
    assert info.value.kind == "too_large"
