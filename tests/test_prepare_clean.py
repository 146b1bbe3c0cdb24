"""prepare's clean stage: titles normalised (and hostile ones survived), duplicate images found."""

import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from clip_arena.prepare.clean import MAX_TITLE_CHARS, clean_title, duplicate_groups, image_facts


@pytest.mark.parametrize("raw, clean", [
    ("MODERN OAK DINING TABLE - FREE SHIPPING!!!", "Modern Oak Dining Table"),
    ("&lt;b&gt;Linen&lt;/b&gt; sofa &amp;amp; chair SKU: AB-12345", "Linen sofa & chair"),
    ("HOT SALE!!! Leather Jacket 50% OFF", "Leather Jacket"),
    ("Wool coat B07XJ8C8F5 100x200cm", "Wool coat 100x200cm"),  # a stock code goes, a size stays
    ("  velvet\u200b armchair\x00\n  ", "velvet armchair"),
    ("ＦＵＬＬＷＩＤＴＨ chair", "FULLWIDTH chair"),
    ("Garage sale sign", "Garage sale sign"),  # "sale" in a real title is not noise
    ("Item #44113 Blue lamp | BEST PRICE", "Blue lamp"),
    ("<p>Rattan <i>lounge</i> chair</p>", "Rattan lounge chair"),
    ("FREE SHIPPING!!!", "Free Shipping!"),  # all noise: the title is kept rather than emptied
    (None, ""),
    ("Table lamp &lt;linen shade&gt;", "Table lamp (linen shade)"),  # escaped brackets are text, not a tag
    ("Chair model SKU123", "Chair model"), ("Model: X-100 lamp", "lamp"),  # "model" is a label with a mark only
    ("Poster http://x.example/a", "Poster http://x.example/a"), ("snake__x", "snake__x"),
    ("<script>alert(1)</script>Desk", "Desk"), ("Desk &lt;style&gt;p{}&lt;/style&gt;", "Desk"),  # code, not words
])
def test_titles_come_out_clean(raw, clean):
    assert clean_title(raw) == clean


_FRAGMENTS = st.sampled_from(["FREE SHIPPING!!!", "SALE", "&amp;", "&lt;b&gt;", "<br/>", "</p>", "SKU: X-99",
                              "B07XJ8C8F5", "ß", "ŉ", "ǅ", "ﬁ", "\u200b", "\u202e", "\x00", "\r\n", "!!!",
                              "#12345", "50% OFF", "ＡＢＣ", "İ", "\ud800", "&#0;", "&#x110000;", "&", "<", "e\u0301"])
_TITLES = st.lists(st.one_of(st.text(max_size=30), _FRAGMENTS), max_size=12).map("".join)


@settings(max_examples=120, deadline=None)
@given(_TITLES)
def test_hostile_titles_clean_to_a_stable_printable_title(raw):
    once = clean_title(raw)
    assert clean_title(once) == once  # idempotent
    assert not any(unicodedata.category(ch)[0] == "C" for ch in once)  # no control or format characters
    assert once == once.strip() and "  " not in once and len(once) <= MAX_TITLE_CHARS
    visible = clean_title.__globals__["_decoded"](raw)  # the text a reader sees, markup decoded
    if any(ch.isalpha() for ch in visible):
        assert any(ch.isalpha() for ch in once)  # never empty when there were letters to keep


def _photo(seed, size=(96, 72)):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)  # a coarse pattern, smooth when scaled up
    return Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)


def _facts(image, fmt="PNG", **kw):
    import io

    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return image_facts(buffer.getvalue(), Image.open(buffer).convert("RGB"))


def test_exact_and_near_duplicate_images_are_grouped_with_their_first_row():
    a, b = _photo(1), _photo(2)
    facts = {"a": _facts(a), "a_again": _facts(a), "a_small_jpeg": _facts(a.resize((60, 45)), "JPEG", quality=70),
             "b": _facts(b)}
    ids = list(facts)
    found = duplicate_groups(ids, [f.sha256 for f in facts.values()], [f.phash for f in facts.values()])
    assert found == {"a_again": ("a", "exact"), "a_small_jpeg": ("a", "near")}


def test_near_duplicates_are_found_without_comparing_every_pair():
    rng = np.random.default_rng(0)
    hashes = [int(h) for h in rng.integers(0, 2**63, 2000, dtype=np.int64)]
    ids = [f"r{i}" for i in range(len(hashes))]
    hashes[1500] = hashes[7] ^ 0b1011  # three bits apart: a near copy
    found = duplicate_groups(ids, ids, hashes, max_distance=4)  # sha256s all differ
    assert found == {"r1500": ("r7", "near")}


def test_image_urls_follow_the_fetch_rules_and_are_kept_as_files(tmp_path):
    import dataclasses
    import io

    from clip_arena.core.settings import FetchLimits
    from clip_arena.prepare.stages import Context, clean_part
    from http_server import LocalServer, Route

    buffer = io.BytesIO()
    _photo(3).save(buffer, "PNG")
    with LocalServer() as server:
        server.routes["/chair.png"] = Route(buffer.getvalue(), headers={"Content-Type": "image/png"})
        records = [{"image_id": "a", "title": "CHAIR SALE", "source_uri": server.url("/chair.png")}]
        strict = Context((str(tmp_path),), str(tmp_path / "images"), FetchLimits())
        refused = clean_part(records, strict)[0]
        assert refused["error_kind"] and refused["image_uri"] == ""  # 127.0.0.1 is private: refused by default
        allowed = dataclasses.replace(strict, limits=FetchLimits(allow_private_urls=True))
        row = clean_part(records, allowed)[0]
    assert row["error"] == "" and row["clean_title"] == "Chair"
    kept = tmp_path / "images" / f"{row['sha256'][:32]}.png"
    assert row["image_uri"] == str(kept) and kept.read_bytes() == buffer.getvalue()
    assert (row["width"], row["height"]) == (96, 72)


def test_hostile_image_cells_are_reported_per_row_never_a_crash(tmp_path):
    from clip_arena.prepare.stages import Context, clean_part

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    _photo(4).save(root / "ok.png")
    (tmp_path / "outside.png").write_bytes((root / "ok.png").read_bytes())
    (root / "link.png").symlink_to(tmp_path / "outside.png")
    cells = ["ok.png", "", "   ", "a\x00b.png", "x" * 5000, "../outside.png", str(tmp_path / "outside.png"),
             "link.png", "sub", "/dev/zero", "file:///etc/passwd", "http://", "ftp://example.com/a.png", "ok.png"]
    records = [{"image_id": f"r{i}", "title": "t", "source_uri": c} for i, c in enumerate(cells)]
    records[-1]["image_id"] = ""
    rows = clean_part(records, Context((str(root),), str(tmp_path / "images")))
    assert len(rows) == len(cells)
    assert rows[0]["error"] == "" and rows[0]["image_uri"] == str(root / "ok.png")
    for row in rows[1:]:
        assert row["error_kind"] and row["error"] and row["image_uri"] == "", row
    assert "--image-root" in rows[5]["error"] and rows[-1]["error_kind"] == "bad_id"


def test_simple_drawings_in_other_colours_are_not_near_duplicates_but_a_recompressed_copy_is():
    """The same chair drawn on white in six colours shares its pHash; the colour check keeps them apart
    (they are products of their own), while a smaller JPEG of one of them is still its near copy."""
    from PIL import ImageDraw

    from clip_arena.prepare.clean import same_picture, thumbnail

    images = []
    for k, colour in enumerate([(180, 60, 40), (60, 90, 200), (40, 160, 60), (230, 200, 40), (120, 40, 160),
                                (30, 30, 30)]):
        image = Image.new("RGB", (320, 240), (250, 250, 245))
        ImageDraw.Draw(image).rectangle([100 + k, 60, 180, 180], fill=colour)
        images.append(image)
    images.append(images[0].resize((200, 150)))
    facts = [_facts(im, "JPEG", quality=80) for im in images]
    thumbs = [thumbnail(im) for im in images]
    ids = [f"c{i}" for i in range(len(images))]
    args = (ids, [f.sha256 for f in facts], [f.phash for f in facts])
    assert len(duplicate_groups(*args)) >= 4  # pHash alone joins the drawings
    assert duplicate_groups(*args, confirm=lambda i, j: same_picture(thumbs[i], thumbs[j])) == {"c6": ("c0", "near")}


# What the current cleaning makes of the demo's emoji names (the bundled demo is built from them): every
# name is its own clean title but these. A change to cleaning must not move any of them.
EMOJI_CHANGED = {"keycap: *": "keycap", "NEW button": "button"}


def test_every_emoji_name_of_the_demo_cleans_as_before():
    from clip_arena.demo.emoji import EMOJI_TEST, parse_emoji_test

    if not EMOJI_TEST.is_file():
        pytest.skip("unicode-data's emoji-test.txt is not installed")
    names = [e.name for e in parse_emoji_test()]
    moved = {n: clean_title(n) for n in names if clean_title(n) != EMOJI_CHANGED.get(n, n)}
    assert len(names) > 1800 and moved == {}


def test_a_data_uri_is_said_to_be_unread_not_missing(tmp_path):
    from clip_arena.prepare.stages import Context, clean_part

    records = [{"image_id": "a", "title": "Chair", "source_uri": "data:image/png;base64,iVBORw0KGgo="},
               {"image_id": "b", "title": "Chair", "source_uri": "DATA:,x"}]
    for row in clean_part(records, Context((str(tmp_path),), str(tmp_path / "images"))):
        assert row["error"].startswith("data: URIs are not read") and row["image_uri"] == ""
