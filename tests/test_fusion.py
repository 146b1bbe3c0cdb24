"""Score fusion (issue 24): a named model that is a weighted combination of calibrated models, scored
like any other (Similarity results, Batch rows)."""

import csv

import numpy as np
import pytest

from calibration_helpers import SyntheticEncoder, image_of, write_pairs
from clip_arena.analyzer.batch import BatchOptions, score_csv
from clip_arena.analyzer.batch_view import SHOWS, SORTS, histogram, preview_rows, with_thumbnails
from clip_arena.analyzer.similarity import score_fused, score_image_texts
from clip_arena.analyzer.similarity_view import results_figure, results_table, summary_line
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings
from clip_arena.models.calibration import calibrate, read_pairs
from clip_arena.models.fusion import Fusion, Member

TEXTS = ["item 3, view 1", "item 4, view 2", "item 5, view 3"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two different calibrated models (one isotonic, one Platt), as the models file would name them."""
    pairs = read_pairs(write_pairs(tmp_path_factory.mktemp("pairs"), range(0, 150), seed=3))
    a, b = SyntheticEncoder(items=300, seed=0), SyntheticEncoder(items=300, seed=1, noise=0.8)
    quiet = dict(spec="synthetic:test", progress=lambda _: None)
    return {"a": (a, calibrate(a, pairs, method="isotonic", name="a", **quiet)),
            "b": (b, calibrate(b, pairs, method="platt", name="b", **quiet))}


def fusion(models, **weights) -> Fusion:
    return Fusion([Member(name, w, *models[name]) for name, w in weights.items()])


def test_fused_probability_is_the_weighted_mean_of_calibrated_members(models):
    image = image_of(3, 7)
    one = {name: {r.text: r for r in score_image_texts(enc, image, TEXTS, calibration=cal)}
           for name, (enc, cal) in models.items()}
    fused = fusion(models, a=3, b=1)  # normalised: 0.75 and 0.25
    assert fused.describe() == "fusion: a 0.75 + b 0.25"
    results = score_fused(fused, image, TEXTS)
    for r in results:
        assert r.probability == pytest.approx(0.75 * one["a"][r.text].probability + 0.25 * one["b"][r.text].probability)
        assert r.percentile == pytest.approx(0.75 * one["a"][r.text].percentile + 0.25 * one["b"][r.text].percentile,
                                             abs=0.1)
        assert np.isnan(r.cosine)
    assert [r.probability for r in results] == sorted((r.probability for r in results), reverse=True)
    assert results[0].text == "item 3, view 1"
    assert np.allclose(fused.probabilities(image, TEXTS), [0.75 * one["a"][t].probability + 0.25 * one["b"][t].probability
                                                           for t in TEXTS])


def test_a_fusion_weighing_one_member_alone_scores_as_that_member(models):
    image = image_of(4, 2)
    alone = fusion(models, a=1, b=0)
    member = score_image_texts(*models["a"][:1], image, TEXTS, calibration=models["a"][1])
    assert [(r.text, r.probability, r.percentile) for r in score_fused(alone, image, TEXTS)] == \
        [(r.text, pytest.approx(r.probability), pytest.approx(r.percentile)) for r in member]


def test_the_similarity_view_shows_a_fusions_probability(models):
    results = score_fused(fusion(models, a=1, b=1), image_of(3, 1), TEXTS)
    table = results_table(results)
    assert table["P(match)"].between(0, 1).all() and table["cosine"].isna().all()
    assert "calibrated probability of a match" in summary_line(results, "ab") and "cosine" not in summary_line(results, "ab")
    assert results_figure(results).data[0].x[-1] == results[0].probability


def test_a_fusion_refuses_an_uncalibrated_member_and_bad_weights(models):
    enc, cal = models["a"]
    with pytest.raises(UserError, match="names b, which has no calibration; calibrate it first"):
        Fusion([Member("a", 1, enc, cal), Member("b", 1, models["b"][0], None)])
    for weight in (-1, float("nan"), float("inf"), "heavy"):
        with pytest.raises(UserError, match="weights are numbers >= 0"):
            Fusion([Member("a", weight, enc, cal)])
    with pytest.raises(UserError, match="every model the weight 0"):
        Fusion([Member("a", 0, enc, cal)])
    with pytest.raises(UserError, match="names no model"):
        Fusion([])
    with pytest.raises(UserError, match="made for model fingerprint"):  # a's calibration on b's weights
        Fusion([Member("a", 1, models["b"][0], cal)])


def test_batch_rows_scored_by_a_fusion(tmp_path, models):
    fused = fusion(models, a=1, b=1)
    image_of(1, 9).save(tmp_path / "1.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "in.csv").write_text("image,caption\n1.png,\"item 1, view 3\"\n1.png,\"item 8, view 3\"\n"
                                     "bad.png,item 1\n1.png,\n")
    report = score_csv(tmp_path / "in.csv", tmp_path / "out.csv", fused,
                       BatchOptions(image_roots=[str(tmp_path)], chunk_rows=2))
    with open(tmp_path / "out.csv") as f:
        rows = list(csv.DictReader(f))
    assert report.scored == 2 and len(rows) == 4
    expected = fused.pair_probabilities([image_of(1, 9)] * 2, ["item 1, view 3", "item 8, view 3"])
    assert [float(r["probability"]) for r in rows[:2]] == pytest.approx(expected, abs=1e-4)
    assert expected[0] > expected[1] and all(r["cosine"] == "" for r in rows)
    assert rows[2]["error"].split(":")[0] in ("corrupt", "unreadable", "not_image") and rows[2]["probability"] == ""
    assert rows[3]["error"].startswith("missing_caption")
    preview = with_thumbnails(preview_rows(tmp_path / "out.csv"), "image", fused, Settings())  # the Batch tab's
    assert preview["probability"].tolist() == [r["probability"] for r in rows]


def test_the_batch_tab_reads_a_fused_file_by_its_probability(tmp_path, models):
    """A fusion's file has no cosine: the histogram, the sort and the thumbnails go by `probability`."""
    fused = fusion(models, a=1, b=1)
    image_of(2, 5).save(tmp_path / "2.png")
    captions = ["item 9, view 1", "item 2, view 1", "item 7, view 4"]
    (tmp_path / "in.csv").write_text("image,caption\n" + "".join(f'2.png,"{c}"\n' for c in captions) + "gone.png,x\n")
    score_csv(tmp_path / "in.csv", tmp_path / "out.csv", fused, BatchOptions(image_roots=[str(tmp_path)]))
    expected = fused.pair_probabilities([image_of(2, 5)] * 3, captions)
    fig = histogram(tmp_path / "out.csv")
    assert sorted(fig.data[0].x) == pytest.approx(sorted(expected), abs=1e-4)
    assert fig.layout.xaxis.title.text == "probability" and "probability" in fig.layout.title.text.lower()
    top = preview_rows(tmp_path / "out.csv", SORTS[1], SHOWS[1])
    assert top["row"].tolist() == [1 + int(i) for i in np.argsort(-expected)]
    shown = with_thumbnails(top, "image", fused.members[0].encoder, Settings(image_roots=[str(tmp_path)]))
    assert shown["thumbnail"].str.startswith("![thumbnail](data:image/jpeg").all()
    assert shown["percentile"].tolist() == top["percentile"].tolist()  # the fusion's own, kept
