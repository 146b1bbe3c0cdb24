"""The one image-source policy: the same roots, refusals and caps for every tab and command."""

import ipaddress
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from PIL import Image

import clip_arena.analyzer.fetch as fetch
from clip_arena.analyzer.images import PixelBudget, decode_image, load_image
from clip_arena.analyzer.policy import BROWSER, ImagePolicy, configured_roots
from clip_arena.core.errors import ImageLoadError
from clip_arena.core.settings import FetchLimits, Settings

EMBEDDED_PRIVATE = ["::127.0.0.1", "::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:a9fe:a9fe::1",
                    "2002:7f00:1::1", "fec0::1", "::ffff:127.0.0.1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                    # RFC 8215 local-use NAT64 (was called public on main, and a connection attempted)
                    "64:ff9b:1::5db8:d822", "64:ff9b:1:ffff::a00:1"]


def _kind(fn, *args, **kw):
    with pytest.raises(ImageLoadError) as info:
        fn(*args, **kw)
    return info.value


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
def test_ipv6_forms_that_embed_private_ipv4_are_refused(address):
    assert not fetch._public(ipaddress.ip_address(address))
    err = _kind(load_image, f"http://[{address}]:9/x.png")
    assert err.kind == "private_address", address


def test_public_addresses_stay_public():
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::5db8:d822", "2002:5db8:d822::1"):
        assert fetch._public(ipaddress.ip_address(address)), address


@pytest.mark.parametrize("url", ["http://[::1", "http://example.com:99999/a.png", "http://" + "a" * 64 + ".com/x.png",
                                 "http://exa mple.com/x.png", "http://example.com/\x00.png", "http:///nohost.png",
                                 "https://[fe80::1]/x"])
def test_malformed_urls_are_one_error_each(url):
    err = _kind(load_image, url)
    assert err.kind in {"bad_url", "private_address"}, (url, err.kind)


@pytest.mark.parametrize("cell", ["a\x00b.png", "x" * 300 + ".png", "/".join(["d" * 50] * 120), "\udcff.png"])
def test_malformed_paths_are_one_error_each(tmp_path, cell):
    err = _kind(ImagePolicy((str(tmp_path),)).load, cell)
    assert err.kind in {"bad_path", "not_found"}, (cell[:20], err.kind)


def test_paths_outside_the_roots_say_nothing_about_them(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "secret.png")
    (tmp_path / "notes.txt").write_text("hello")
    policy = ImagePolicy((str(root),), audience=BROWSER)
    answers = {str(_kind(policy.load, str(p))).replace(str(p), "P")
               for p in (tmp_path / "secret.png", tmp_path / "notes.txt", tmp_path / "missing.png")}
    assert len(answers) == 1 and str(tmp_path) not in answers.pop()  # same answer whether it exists or not
    assert _kind(policy.load, "/dev/zero").kind == "outside_roots"


def test_only_regular_files_are_read_even_under_a_root(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "dir.png").mkdir()
    policy = ImagePolicy(("/dev", str(tmp_path)))
    for source in ("/dev/zero", "pipe.png", "dir.png"):
        assert _kind(policy.load, source).kind == "not_a_file", source  # no read, no hang


def test_cli_messages_name_the_allowed_folder_and_the_option(tmp_path):
    policy = ImagePolicy.for_cli(Settings(), [str(tmp_path / "root")])
    message = str(_kind(policy.load, "/etc/hostname"))
    assert str(tmp_path / "root") in message and "--image-root" in message


def test_hosted_turns_local_paths_off_unless_roots_are_configured(monkeypatch, tmp_path):
    monkeypatch.delenv("CLIP_ARENA_IMAGE_ROOTS", raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/clip-arena")
    assert configured_roots(Settings.from_env()) is None
    assert _kind(ImagePolicy.for_server(Settings.from_env()).load, "a.png").kind == "local_path_refused"
    monkeypatch.setenv("CLIP_ARENA_IMAGE_ROOTS", str(tmp_path))
    assert configured_roots(Settings.from_env()) == [str(tmp_path)]


def test_uploads_are_named_not_shown_by_their_temp_path(tmp_path):
    upload = tmp_path / "gradio" / "abc" / "notes.png"
    upload.parent.mkdir(parents=True)
    upload.write_text("not an image")
    policy = ImagePolicy(None, FetchLimits(max_bytes=5), BROWSER)
    err = _kind(policy.load_upload, str(upload), str(tmp_path / "gradio"))
    assert err.kind == "too_large" and "uploaded image" in str(err) and str(tmp_path) not in str(err)
    assert "5 bytes" in str(err)
    err = _kind(ImagePolicy(None).load_upload, str(upload), str(tmp_path / "gradio"))
    assert err.kind == "not_image" and str(tmp_path) not in str(err)
    assert _kind(ImagePolicy(None).load_upload, "/etc/hostname", str(tmp_path / "gradio")).kind == "outside_roots"


# --- the fetch deadline and refused connections ----------------------------------------------------

class DripServer:
    """Sends headers, then one body byte every `every_s` seconds until told to stop or the client goes."""

    def __init__(self, body_bytes=40, every_s=0.2):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sent = 0
        self.body_bytes, self.every_s = body_bytes, every_s
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.recv(65536)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.body_bytes}\r\n\r\n".encode())
        try:
            for _ in range(self.body_bytes):
                conn.sendall(b"x")
                self.sent += 1
                time.sleep(self.every_s)
        except OSError:
            pass
        conn.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/drip.png"


def test_the_deadline_covers_the_whole_fetch_not_each_chunk():
    server = DripServer(body_bytes=40, every_s=0.2)  # 8 s to send it all
    err = _kind(fetch.fetch_bytes, server.url, FetchLimits(allow_private_urls=True, timeout_s=1.0))
    assert err.kind == "timeout"
    assert server.sent < server.body_bytes  # the fetch gave up before the server finished dripping
    server.sock.close()


def test_a_refused_connection_is_reported_as_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    err = _kind(fetch.fetch_bytes, f"http://127.0.0.1:{port}/x.png", FetchLimits(allow_private_urls=True))
    assert err.kind == "connection_failed" and "refused" in str(err)


# --- bounded decoding ----------------------------------------------------------------------------

def test_large_jpegs_are_decoded_reduced_to_the_model_size(tmp_path):
    import io

    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), "navy").save(buf, "JPEG")
    sizes = []
    decode_image(buf.getvalue(), "big", FetchLimits(), target_size=224, then=lambda im: sizes.append(im.size))
    assert 224 <= min(sizes[0]) < 3000 / 4  # decoded at 1/8 in the DCT: 500x375
    assert decode_image(buf.getvalue(), "big", FetchLimits()).size == (4000, 3000)  # the Analyze tab keeps detail


def test_the_pixel_budget_bounds_pixels_decoded_at_once():
    budget = PixelBudget(100)
    peak, lock, inside = [0], threading.Lock(), [0]

    def work(pixels):
        with budget.hold(pixels):
            with lock:
                inside[0] += pixels
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.01)
            with lock:
                inside[0] -= pixels

    threads = [threading.Thread(target=work, args=(p,)) for p in [40] * 12 + [150]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] <= 150 and budget.used == 0  # never over the budget, except the one oversized image alone


# --- property: any string is one clean error or an image ---------------------------------------------

@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=st.one_of(st.text(max_size=300), st.text(alphabet="htps:/[]@%.:0123456789abcdef\x00 \\?#x-", max_size=80)
                      .map(lambda s: "http://" + s), st.from_regex(r"https?://[a-z0-9.\-\[\]:]{0,70}(:\d{0,6})?/.{0,20}",
                                                                   fullmatch=True)))
def test_any_cell_gives_an_image_or_one_image_error(tmp_path, monkeypatch, cell):
    # Every name resolves to loopback here, so no test ever leaves the machine, and every URL that
    # gets as far as a connection is refused as private.
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [(0, 0, 0, "", ("127.0.0.1", port))])
    try:
        ImagePolicy((str(tmp_path),), FetchLimits(timeout_s=0.5)).load(cell)
    except ImageLoadError as err:
        assert err.kind and str(err).strip()
