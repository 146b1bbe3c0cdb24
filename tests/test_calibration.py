"""Calibrated scores (issue 24): a model's cosine as a calibrated probability of a match and a
percentile among mismatched pairs, checked on held-out pairs; tied to the model's weights."""

import copy
import csv
import json
import math
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration_helpers import SyntheticEncoder, TrainedEncoder, image_of, pattern_image, write_pairs
from clip_arena.analyzer.batch import BatchOptions, score_csv
from clip_arena.analyzer.batch_view import preview_rows, with_thumbnails
from clip_arena.analyzer.similarity import score_image_texts
from clip_arena.analyzer.similarity_view import results_table, summary_line
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings
from clip_arena.models.calibration import (Calibration, calibrate, fit_calibration, model_fingerprint, pair_cosines,
                                           read_pairs, reliability, reliability_table)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Training pairs and held-out pairs (other images, other captions) of the same synthetic model."""
    folder = tmp_path_factory.mktemp("pairs")
    return read_pairs(write_pairs(folder, range(0, 400), seed=1, mismatched_per_image=3, name="train.csv")), \
        read_pairs(write_pairs(folder, range(400, 1000), seed=2, mismatched_per_image=3, name="held_out.csv"))


@pytest.fixture(scope="module")
def encoder():
    return SyntheticEncoder(items=1000)


@pytest.fixture(scope="module")
def held_out(encoder, pairs):
    return pair_cosines(encoder, pairs[1], progress=lambda _: None)


@pytest.fixture(scope="module")
def isotonic(encoder, pairs):
    return calibrate(encoder, pairs[0], method="isotonic", name="a", spec="synthetic:test", progress=lambda _: None)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrated_probabilities_hold_on_held_out_pairs(encoder, pairs, held_out, method):
    said = []
    cal = calibrate(encoder, pairs[0], method=method, name="a", spec="synthetic:test", progress=said.append)
    assert (cal.n_matched, cal.n_mismatched) == (400, 1200) and cal.method == method
    assert cal.ece < 0.05 and "expected calibration error" in said[-1]
    cos, match = held_out
    probability = cal.probability(cos)
    bins, ece = reliability(probability, match)
    assert ece < 0.05, (method, ece)
    assert sum(b["count"] for b in bins) == len(match) == 2400
    assert probability[match == 1].mean() > 0.5 > 0.2 > probability[match == 0].mean()
    order = np.argsort(cos)
    assert np.all(np.diff(probability[order]) >= -1e-12)  # a higher cosine never reads as less likely


def test_a_tiny_model_trained_to_separate_pairs_is_calibrated_on_held_out_items(tmp_path):
    """The issue's check with a model trained in the test: a two-tower model learns, with CLIP's loss,
    to separate matched from mismatched pairs of items 0-299; calibrated on pairs of items 300-599,
    its probabilities hold (ECE under 0.05) on items 600-1199 it never saw, for both fits."""
    model = TrainedEncoder()
    train, held = (read_pairs(write_pairs(tmp_path, items, seed=s, mismatched_per_image=3, name=n, draw=pattern_image))
                   for items, s, n in ((range(300, 600), 3, "fit.csv"), (range(600, 1200), 4, "held.csv")))

    def auc(cos, match):  # the chance a matched pair outscores a mismatched one
        from scipy.stats import mannwhitneyu
        return mannwhitneyu(cos[match == 1], cos[match == 0]).statistic / ((match == 1).sum() * (match == 0).sum())

    before = auc(*pair_cosines(model, held, progress=lambda _: None))
    losses = model.train_on(range(0, 300))
    cos, match = pair_cosines(model, held, progress=lambda _: None)
    assert before < 0.65 < 0.9 < auc(cos, match) and np.mean(losses[-20:]) < np.mean(losses[:20])
    for method in ("isotonic", "platt"):
        cal = calibrate(model, train, method=method, name="tiny", spec="tiny:trained", progress=lambda _: None)
        probability = cal.probability(cos)
        assert reliability(probability, match)[1] < 0.05, method
        order = np.argsort(cos)
        assert np.all(np.diff(cal.percentile(cos[order])) >= 0)  # percentiles monotone in the cosine


def test_pairs_whose_image_cannot_be_read_are_left_out_and_said(encoder, pairs, tmp_path):
    import pandas as pd

    some = pd.concat([pairs[0].head(30), pd.DataFrame([{"image": str(tmp_path / "gone.png"), "caption": "x", "match": 1}])])
    said = []
    cos, match = pair_cosines(encoder, some, progress=said.append, batch_size=8)
    assert len(cos) == len(match) == 30 and "1 image(s) could not be read" in said[-1] and "gone.png" in said[-1]
    with pytest.raises(UserError, match="0 matched and 0 mismatched"):  # --image-root elsewhere: nothing is read
        calibrate(encoder, some, name="a", spec="s", image_root=tmp_path, progress=said.append)
    assert "outside" in said[-1] or "allowed" in said[-1]


def test_a_raw_cosine_is_not_a_probability(held_out):
    """Why calibrate: the model's cosines read as probabilities ((cos + 1) / 2) are far off."""
    cos, match = held_out
    assert reliability((cos + 1) / 2, match)[1] > 0.2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mismatched=st.lists(st.floats(-1, 1), min_size=10, max_size=60),
       matched=st.lists(st.floats(-1, 1), min_size=10, max_size=30),
       queries=st.lists(st.floats(-1.5, 1.5), min_size=2, max_size=20), method=st.sampled_from(["isotonic", "platt"]))
def test_percentiles_and_probabilities_are_monotone_and_bounded(mismatched, matched, queries, method):
    try:
        cal = fit_calibration(mismatched + matched, [0] * len(mismatched) + [1] * len(matched), method=method,
                              name="a", spec="s", fingerprint="f")
    except UserError as err:  # pairs that do not separate: nothing to calibrate, said so
        assert "do not score higher" in str(err) and np.mean(matched) <= np.mean(mismatched) + 1e-9 or "platt" == method
        return
    q = np.sort(np.array(queries))
    pct, prob = cal.percentile(q), cal.probability(q)
    assert np.all((pct >= 0) & (pct <= 100)) and np.all((prob >= 0) & (prob <= 1))
    assert np.all(np.diff(pct) >= 0) and np.all(np.diff(prob) >= -1e-12)
    assert cal.percentile(np.array([min(mismatched) - 0.01]))[0] == 0
    assert cal.percentile(np.array([max(mismatched) + 0.01]))[0] == 100


def test_percentile_is_the_share_of_mismatched_pairs_below():
    rng = np.random.default_rng(0)
    mismatched, matched = rng.normal(0, 0.1, 5000), rng.normal(0.3, 0.1, 500)
    cal = fit_calibration(np.r_[mismatched, matched], np.r_[np.zeros(5000), np.ones(500)], name="a", spec="s",
                          fingerprint="f")
    for cos in (-0.1, 0.0, 0.05, 0.2):
        assert cal.percentile(np.array([cos]))[0] == pytest.approx(100 * np.mean(mismatched < cos), abs=0.6)


def test_too_few_pairs_of_a_kind_are_refused():
    with pytest.raises(UserError, match="at least 10 matched and 10 mismatched.*3 matched and 20 mismatched"):
        fit_calibration([0.3] * 3 + [0.0] * 20, [1] * 3 + [0] * 20, name="a", spec="s", fingerprint="f")
    with pytest.raises(UserError, match="do not score higher.*inverted"):
        fit_calibration([0.3] * 12 + [0.0] * 12, [0] * 12 + [1] * 12, name="a", spec="s", fingerprint="f")
    with pytest.raises(UserError, match="choose isotonic or platt"):
        fit_calibration([0.1] * 30, [0, 1] * 15, method="beta", name="a", spec="s", fingerprint="f")


def test_a_calibration_is_refused_for_another_models_weights(isotonic, encoder):
    isotonic.check(encoder)  # its own model
    isotonic.check(SyntheticEncoder(items=1000))  # the same weights loaded again
    half = SyntheticEncoder(items=1000)
    half.model.half()  # the same weights in fp16 (as on a GPU): the same model
    assert model_fingerprint(half) == model_fingerprint(encoder) == isotonic.fingerprint
    other = SyntheticEncoder(items=1000, seed=7)
    with pytest.raises(UserError, match=f"calibration a was made for model fingerprint {isotonic.fingerprint[:12]}, "
                                        f"this model is {model_fingerprint(other)[:12]}"):
        isotonic.check(other)
    with pytest.raises(UserError, match="made for model fingerprint"):
        score_image_texts(other, image_of(1, 1), ["item 1"], calibration=isotonic)


def test_an_open_clip_models_fingerprint_follows_its_weights(tiny_open_clip_spec, tmp_path):
    from tiny_models import save_tiny_open_clip

    from clip_arena.models import get_encoder

    config, weights = save_tiny_open_clip(tmp_path / "other", seed=1)
    same = model_fingerprint(get_encoder(tiny_open_clip_spec))
    half = types.SimpleNamespace(model=copy.deepcopy(get_encoder(tiny_open_clip_spec).model).half())  # as on a GPU
    assert same == model_fingerprint(half)
    assert same != model_fingerprint(get_encoder(f"open_clip:{config}@{weights}"))


def test_the_reliability_curve_is_drawn_and_printed(isotonic):
    from clip_arena.models.calibration_figure import reliability_figure

    fig = reliability_figure(isotonic)
    assert list(fig.data[1].x) == [b["mean_predicted"] for b in isotonic.reliability]
    assert f"{isotonic.ece:.3f}" in fig.layout.title.text
    table = reliability_table(isotonic).splitlines()
    assert len(table) == len(isotonic.reliability) + 2 and "expected calibration error" in table[-1]


def test_save_and_load_round_trip(tmp_path, isotonic, encoder, pairs):
    platt = calibrate(encoder, pairs[0], method="platt", name="b", spec="synthetic:test", progress=lambda _: None)
    grid = np.linspace(-1, 1, 401)
    for cal in (isotonic, platt):
        loaded = Calibration.load(cal.save(tmp_path / "cal" / f"{cal.name}.json"))
        assert loaded == cal
        assert np.array_equal(loaded.probability(grid), cal.probability(grid))
        assert np.array_equal(loaded.percentile(grid), cal.percentile(grid))
    data = json.loads((tmp_path / "cal" / "a.json").read_text())
    assert data["format"] == "clip-arena-calibration" and len(data["params"]["thresholds"]) > 2
    assert json.loads((tmp_path / "cal" / "b.json").read_text())["params"].keys() == {"a", "b"}


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a calibration file"),
    ('{"format": "other"}', "not a clip-arena calibration file"),
    ('{"format": "clip-arena-calibration", "version": 9}', "version 9"),
    ('{"format": "clip-arena-calibration", "version": 1, "name": "a"}',
     "c.json is a damaged calibration file: it lacks spec, fingerprint, method, .*mismatched_quantiles[.]$"),
])
def test_a_damaged_calibration_file_is_one_sentence(tmp_path, content, message):
    (tmp_path / "c.json").write_text(content)
    with pytest.raises(UserError, match=message):
        Calibration.load(tmp_path / "c.json")
    with pytest.raises(UserError, match="calibration file .*missing.json cannot be read"):
        Calibration.load(tmp_path / "missing.json")


def test_a_calibration_path_that_is_no_regular_file_is_refused_without_reading_it(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.json")  # open() on it would wait for a writer forever
    for path in (tmp_path / "fifo.json", "/dev/zero"):  # /dev/zero would be read until memory runs out
        with pytest.raises(UserError, match="is not a regular file"):
            Calibration.load(path)


def test_tampered_steps_are_refused(tmp_path, isotonic):
    data = isotonic.to_json()
    data["params"]["values"] = list(reversed(data["params"]["values"]))
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="damaged.*not increasing"):
        Calibration.load(tmp_path / "c.json")


def test_read_pairs_accepts_common_headers_and_resolves_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "p.csv"
    path.write_text("\ufeffImage_Path;Text;Label\nimg/a.png;a cat;yes\nhttps://x.org/b.png;a dog;0\n/abs/c.png;c;TRUE\n",
                    encoding="utf-8")
    frame = read_pairs(path)
    assert list(frame.columns) == ["image", "caption", "match"]
    assert frame["image"].tolist() == [str(tmp_path / "sub" / "img" / "a.png"), "https://x.org/b.png", "/abs/c.png"]
    assert frame["match"].tolist() == [1, 0, 1]


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("photo,caption,match\na.png,x,1\n", "no image column"),
    ("image,caption\na.png,x\n", "no match column"),
    ("image,caption,match\na.png,x,maybe\n", "Line 2 .* not 1 or 0"),
    ("image,caption,match\n,x,1\n", "Line 2 .* empty image or caption"),
    ("image,caption,match\na.png,x\n", "Line 2 of p.csv has 2 cells; the header has 3"),
    ("image,caption,match\n", "no pairs"),
])
def test_read_pairs_says_what_is_wrong_in_one_sentence(tmp_path, content, message):
    (tmp_path / "p.csv").write_text(content)
    with pytest.raises(UserError, match=message):
        read_pairs(tmp_path / "p.csv")
    (tmp_path / "latin.csv").write_bytes("image,caption,match\nа.png,caf\xe9,1\n".encode("latin-1", "replace"))
    with pytest.raises(UserError, match="not UTF-8"):
        read_pairs(tmp_path / "latin.csv")


cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.lists(st.one_of(cells, st.sampled_from(["image", "caption", "match", "URL", "label"])), max_size=5),
       rows=st.lists(st.lists(st.one_of(cells, st.sampled_from(["1", "0", "a.png"])), max_size=6), max_size=6))
def test_read_pairs_on_hostile_csvs_gives_pairs_or_one_sentence(tmp_path, header, rows):
    path = tmp_path / "hostile.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header] + rows)
    try:
        frame = read_pairs(path)
    except UserError as err:
        assert str(err) and "\n" not in str(err).strip()
        return
    assert list(frame.columns) == ["image", "caption", "match"] and len(frame) >= 1
    assert set(frame["match"]) <= {0, 1} and all(c.strip() for c in frame["caption"])


def test_similarity_reports_probability_only_for_a_calibrated_model(isotonic, encoder):
    texts = ["item 3, view 1", "item 4, view 2"]
    plain = score_image_texts(encoder, image_of(3, 5), texts)
    assert all(r.probability is None for r in plain) and "P(match)" not in results_table(plain).columns
    calibrated = score_image_texts(encoder, image_of(3, 5), texts, calibration=isotonic)
    assert [r.cosine for r in calibrated] == [r.cosine for r in plain]
    for r in calibrated:
        assert r.probability == pytest.approx(isotonic.probability(np.array([r.cosine]))[0])
        assert r.percentile == round(float(isotonic.percentile(np.array([r.cosine]))[0]), 1)
    table = results_table(calibrated)
    assert list(table.columns)[-1] == "P(match)" and table["P(match)"].between(0, 1).all()
    assert "calibrated probability of a match" in summary_line(calibrated, "a")


def test_batch_adds_probability_and_percentile_for_a_calibrated_model(tmp_path, isotonic, encoder):
    for item in (1, 2):
        image_of(item, 9).save(tmp_path / f"{item}.png")
    (tmp_path / "in.csv").write_text("image,caption\n1.png,\"item 1, view 3\"\n2.png,\"item 5, view 3\"\nmissing.png,x\n")
    options = BatchOptions(image_roots=[str(tmp_path)], reduced_decode=False)
    score_csv(tmp_path / "in.csv", tmp_path / "plain.csv", encoder, options)
    options.calibration = isotonic
    report = score_csv(tmp_path / "in.csv", tmp_path / "cal.csv", encoder, options)
    with open(tmp_path / "plain.csv") as f:
        plain = list(csv.DictReader(f))
    with open(tmp_path / "cal.csv") as f:
        rows = list(csv.DictReader(f))
    assert "probability" not in plain[0] and report.scored == 2
    assert list(rows[0])[-3:] == ["probability", "percentile", "error"]
    for row, before in zip(rows, plain):
        assert row["cosine"] == before["cosine"]
    for row in rows[:2]:
        cos = np.array([float(row["cosine"])])
        assert float(row["probability"]) == pytest.approx(isotonic.probability(cos)[0], abs=1e-4)
        assert float(row["percentile"]) == pytest.approx(isotonic.percentile(cos)[0], abs=0.05)
    assert float(rows[0]["probability"]) > float(rows[1]["probability"])
    assert rows[2]["probability"] == rows[2]["percentile"] == "" and rows[2]["error"].startswith("not_found")
    assert not math.isnan(float(rows[1]["probability"]))
    preview = with_thumbnails(preview_rows(tmp_path / "cal.csv"), "image", encoder, Settings())  # the tab's preview
    assert preview["percentile"].tolist() == [r["percentile"] for r in rows]  # the calibrated one, once
