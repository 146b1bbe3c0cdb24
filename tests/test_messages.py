"""Messages and numbers as a first-hour user reads them (issue #21), as plain functions; the browser
side is in test_browser_polish.py."""

import pandas as pd
import pytest
from hypothesis import given, strategies as st

import clip_arena.analyzer.fetch as fetch
from clip_arena.analyzer.batch_view import preview_widths
from clip_arena.analyzer.policy import BROWSER, ImagePolicy
from clip_arena.analyzer.similarity import SimilarityResult
from clip_arena.analyzer.similarity_view import results_figure, results_table, summary_line
from clip_arena.analyzer.widgets import code_specs, error_text
from clip_arena.core.errors import ImageLoadError


def test_one_rounding_per_score_in_summary_table_and_chart():
    result = SimilarityResult(text="a cat", cosine=0.39254, similarity=0.6963, clip_score=39.254, percentile=87.46)
    row = results_table([result]).iloc[0]
    line = summary_line([result], "demo:base")
    assert (row["cosine"], row["clip_score"], row["percentile"]) == (0.3925, 39.25, 87.5)
    assert "cosine 0.3925," in line and "CLIPScore 39.25;" in line and "beats 87.5%" in line
    assert results_figure([result]).data[0].text[0].startswith("0.3925 (beats 87.5%")


def test_model_specs_in_notices_are_code_not_links():
    reason = ("Could not load model open_clip:ViT-B-32@laion2b_s34b_b79k: offline; pass hf:/path/to/folder or "
              "open_clip:CONFIG.json@WEIGHTS.safetensors.")
    shown = error_text(reason)
    assert "`open_clip:CONFIG.json@WEIGHTS.safetensors`." in shown and "`hf:/path/to/folder`" in shown
    assert "`open_clip:ViT-B-32@laion2b_s34b_b79k`:" in shown
    assert code_specs("model `demo:base`") == "model `demo:base`"  # already code: left alone


@given(st.text(max_size=60))
def test_code_specs_only_adds_backticks(text):
    assert code_specs(text).replace("`", "") == text.replace("`", "")


@pytest.mark.parametrize("given_text, wanted", [
    ("not a url at all", "'not a url at all' is neither an image URL (http:// or https://) nor an image file"),
    ("photos/cat.png", "Image file photos/cat.png was not found under the image folders"),
    ("www.example.com/cat.png", "a web address starts with https://"),
])
def test_a_missing_image_is_worded_for_what_was_given(tmp_path, given_text, wanted):
    with pytest.raises(ImageLoadError) as info:
        ImagePolicy((str(tmp_path),), audience=BROWSER).load(given_text)
    assert wanted in str(info.value) and str(tmp_path) not in str(info.value)


def test_private_addresses_are_explained_to_a_web_user_and_to_a_command_user(monkeypatch):
    monkeypatch.setattr(fetch, "_getaddrinfo", lambda host, port: [(None, None, None, "", ("10.1.2.3", port))])
    with pytest.raises(ImageLoadError) as web:
        ImagePolicy(None, audience=BROWSER).load("http://intranet.example/x.png")
    message = str(web.value)
    assert "this server does not fetch images from private" in message and "intranet.example" in message
    assert "pass --allow-private-urls" not in message and "10.1.2.3" not in message  # no internal address
    with pytest.raises(ImageLoadError) as cli:
        ImagePolicy(None).load("http://intranet.example/x.png")
    assert "pass --allow-private-urls to allow it" in str(cli.value)


@pytest.mark.parametrize("columns", [["row", "thumbnail", "url", "title", "cosine", "percentile", "similarity",
                                      "clip_score", "error"],
                                     ["row", "thumbnail"] + [f"c{i}" for i in range(12)] + ["cosine", "error"]])
def test_preview_columns_fit_the_table(columns):
    widths = preview_widths(pd.DataFrame(columns=columns))
    assert len(widths) == len(columns) and sum(float(w.rstrip("%")) for w in widths) <= 100.01
    assert widths[columns.index("error")] == "25%"
