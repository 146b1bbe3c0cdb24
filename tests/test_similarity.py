"""Similarity: ranking, percentile, the tab's plain function and the CLI contract."""

import json

import numpy as np
import pytest
from PIL import Image

from clip_arena.analyzer.scores import scores_from_cosine
from clip_arena.analyzer.similarity import reference_captions, score_image_texts, split_captions
from clip_arena.analyzer.similarity_view import run_similarity
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings
from clip_arena.models import get_encoder
from cli_runner import run_cli


def test_split_captions():
    assert split_captions("a\n\n  b  \r\nc\n") == ["a", "b", "c"]


def test_results_ranked_and_consistent(tiny_open_clip_spec):
    enc = get_encoder(tiny_open_clip_spec)
    image = Image.new("RGB", (40, 40), "blue")
    texts = ["a blue square", "a red car", "a cat", "soup"]
    results = score_image_texts(enc, image, texts)
    assert sorted(r.text for r in results) == sorted(texts)
    cosines = [r.cosine for r in results]
    assert cosines == sorted(cosines, reverse=True)
    expected = enc.encode_texts(texts) @ enc.encode_images([image])[0]
    for r in results:
        assert r.cosine == pytest.approx(float(expected[texts.index(r.text)]), abs=1e-5)
        assert {k: getattr(r, k) for k in ("similarity", "clip_score")} == {
            k: v for k, v in scores_from_cosine(r.cosine).items() if k != "cosine"}
        assert 0 <= r.percentile <= 100


def test_percentile_of_a_reference_caption_is_its_rank(tiny_open_clip_spec):
    enc = get_encoder(tiny_open_clip_spec)
    image = Image.new("RGB", (40, 40), "green")
    refs = list(reference_captions())
    ref_cos = enc.encode_texts(refs) @ enc.encode_images([image])[0]
    top = refs[int(np.argmax(ref_cos))]
    [result] = score_image_texts(enc, image, [top])
    assert result.percentile == pytest.approx(100.0 * (len(refs) - 1) / len(refs), abs=0.1)


def test_run_similarity_needs_image_and_caption(tiny_open_clip_spec, make_image):
    with pytest.raises(UserError, match="Add an image"):
        run_similarity(None, "", "a cat", tiny_open_clip_spec, Settings())
    with pytest.raises(UserError, match="at least one caption"):
        run_similarity(str(make_image()), "", "\n \n", tiny_open_clip_spec, Settings())
    df, fig, line = run_similarity(str(make_image()), "", "a red square\na boat", tiny_open_clip_spec,
                                   Settings(model=tiny_open_clip_spec))
    assert list(df["rank"]) == [1, 2] and set(df["caption"]) == {"a red square", "a boat"}
    assert len(fig.data[0].x) == 2 and "Best match" in line


def test_cli_similarity_json_contract(tiny_open_clip_spec, make_image):
    image = make_image()
    proc = run_cli("similarity", "--image", str(image), "--text", "a red square", "--text", "a dog",
                   "--model", tiny_open_clip_spec, "--json", "--image-root", str(image.parent))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == tiny_open_clip_spec
    assert [set(r) >= {"text", "cosine", "similarity", "clip_score"} for r in out["results"]] == [True, True]
    assert {r["text"] for r in out["results"]} == {"a red square", "a dog"}
    for r in out["results"]:
        assert r["similarity"] == scores_from_cosine(r["cosine"])["similarity"]


def test_cli_bad_image_is_one_sentence(tiny_open_clip_spec, tmp_path):
    (tmp_path / "bad.jpg").write_text("nope")
    proc = run_cli("similarity", "--image", str(tmp_path / "bad.jpg"), "--text", "x", "--model", tiny_open_clip_spec,
                   "--image-root", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not an image" in proc.stderr and proc.stderr.count("\n") == 1
