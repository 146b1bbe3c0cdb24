"""The effectiveness model: it finds a planted signal, finds nothing in a shuffled target, and
round-trips through its file into the Analyze report."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clip_arena.analyzer.content.report import analyze
from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings
from clip_arena.effectiveness import model as em
from clip_arena.effectiveness.features import flatten_numbers
from clip_arena.effectiveness.predict import predictor
from clip_arena.effectiveness.train import TrainOptions, train
from tests.cli_runner import run_cli

PHRASES = ["Big sale today", "New collection", "Shop now and save", "Limited offer", "Discover our range"]


def grey(level: float) -> Image.Image:
    v = int(level * 255)
    return Image.new("RGB", (64, 48), (v, v, int(v * 0.8)))


def write_creatives(folder, rows=100, seed=0, shuffle=False):
    """CTR = 0.02 + 0.05 * brightness + noise; `shuffle` breaks the link between rows and targets."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(rows):
        level = rng.uniform(0.1, 0.9)
        grey(level).save(folder / f"ad{i}.png")
        records.append({"image": f"ad{i}.png", "text": PHRASES[i % 5], "campaign": f"c{i % 25}",
                        "spend": round(rng.uniform(0, 100), 2), "ctr": 0.02 + 0.05 * level + rng.normal(0, 0.003)})
    df = pd.DataFrame(records)
    if shuffle:
        df["ctr"] = rng.permutation(df["ctr"].to_numpy())
    path = folder / "creatives.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory, tiny_open_clip_spec):
    folder = tmp_path_factory.mktemp("planted")
    csv = write_creatives(folder)
    opts = TrainOptions(target="ctr", group_column="campaign", model=tiny_open_clip_spec)
    return train(csv, folder / "model.joblib", opts, Settings()), folder


def test_planted_signal_beats_the_dummy_baseline(planted):
    report = planted[0].report
    assert report["beats_dummy"] and report["model"]["mae_mean"] < 0.5 * report["dummy"]["mae_mean"]
    assert (report["rows"], report["groups"], report["folds"]) == (100, 25, 5)
    assert set(report["ablation"]) == {"tab", "img", "txt", "ana"}
    assert report["tabular"] == ["spend"] and report["image_problems"] == []


def test_shuffled_target_does_not_beat_the_dummy(tmp_path, tiny_open_clip_spec):
    csv = write_creatives(tmp_path, shuffle=True)
    trained = train(csv, tmp_path / "m.joblib", TrainOptions(target="ctr", group_column="campaign",
                                                              model=tiny_open_clip_spec), Settings())
    m, d = trained.report["model"], trained.report["dummy"]
    assert m["mae_mean"] > 0.9 * d["mae_mean"]


def test_tabular_only_model_learns_a_category_effect(tmp_path):
    rng = np.random.default_rng(1)
    channel = rng.choice(["web", "app", "email"], 120)
    ctr = np.select([channel == "web", channel == "app"], [0.02, 0.05], 0.08) + rng.normal(0, 0.004, 120)
    pd.DataFrame({"channel": channel, "ctr": ctr}).to_csv(tmp_path / "c.csv", index=False)
    opts = TrainOptions(target="ctr", image_column=None, text_column=None, model="demo:base")
    trained = train(tmp_path / "c.csv", tmp_path / "m.joblib", opts, Settings())
    assert trained.schema == {"channel": ["app", "email", "web"]}
    assert trained.report["beats_dummy"] and trained.report["ablation"] == {}


def test_creatives_csv_is_read_as_the_batch_tab_reads_csvs(tmp_path):
    rng = np.random.default_rng(2)
    channel = rng.choice(["web", "app"], 40)
    df = pd.DataFrame({"channel": channel, "ctr": np.where(channel == "web", 0.02, 0.05)})
    df.to_csv(tmp_path / "excel.csv", index=False, sep=";", encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    opts = TrainOptions(target="ctr", image_column=None, text_column=None, model="demo:base")
    assert train(tmp_path / "excel.csv", tmp_path / "m.joblib", opts, Settings()).schema == {"channel": ["app", "web"]}
    (tmp_path / "latin1.csv").write_bytes("channel;ctr\ncaf\xe9;0.1\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        train(tmp_path / "latin1.csv", tmp_path / "m.joblib", opts, Settings())


def test_saved_model_loads_and_predicts_brighter_ads_higher(planted, tiny_open_clip_spec):
    trained, folder = planted
    loaded = em.load(folder / "model.joblib")
    assert json.loads((folder / "model.json").read_text())["target"] == "ctr"
    predict = predictor(loaded, str(folder / "model.joblib"))
    got = {}
    for level in (0.15, 0.85):
        report = analyze(grey(level), "New collection", Settings(), model=tiny_open_clip_spec, predictor=predict)
        sec = report["sections"]["effectiveness"]
        assert sec["status"] == "degraded" and "spend" in sec["reason"]  # tabular columns absent here
        assert sec["cv_mae"] == pytest.approx(trained.report["model"]["mae_mean"], abs=1e-6)
        got[level] = sec["prediction"]
    assert got[0.85] - got[0.15] > 0.02  # the planted slope is 0.05 * 0.7 = 0.035


def test_bad_model_files_and_columns_are_clear_errors(tmp_path, planted, tiny_open_clip_spec):
    with pytest.raises(UserError, match="No trained effectiveness model"):
        em.load(tmp_path / "missing.joblib")
    (tmp_path / "junk.joblib").write_text("not a model")
    with pytest.raises(UserError, match="could not be read"):
        em.load(tmp_path / "junk.joblib")
    csv = planted[1] / "creatives.csv"
    with pytest.raises(UserError, match="no target column 'clicks'.*ctr"):
        train(csv, tmp_path / "m.joblib", TrainOptions(target="clicks", model=tiny_open_clip_spec), Settings())
    pd.read_csv(csv).head(10).to_csv(tmp_path / "small.csv", index=False)
    with pytest.raises(UserError, match="at least 20"):
        train(tmp_path / "small.csv", tmp_path / "m.joblib", TrainOptions(target="ctr", model=tiny_open_clip_spec),
              Settings())


def test_unreadable_images_become_missing_features_not_lost_rows(tmp_path, tiny_open_clip_spec):
    csv = write_creatives(tmp_path, rows=40)
    df = pd.read_csv(csv)
    df.loc[3, "image"] = "does-not-exist.png"
    df.to_csv(csv, index=False)
    trained = train(csv, tmp_path / "m.joblib", TrainOptions(target="ctr", model=tiny_open_clip_spec), Settings())
    assert trained.report["rows"] == 40
    assert len(trained.report["image_problems"]) == 1 and trained.report["image_problems"][0].startswith("row 4:")


def test_flatten_numbers_keeps_each_backend_fields_apart():
    sections = {"sentiment": {"status": "degraded", "backend": "vader", "reason": "x", "label": "positive",
                              "vader_compound": 0.6},
                "entities": {"status": "ok", "backend": "rules", "reason": None,
                             "patterns": {"urls": ["a.com"], "money": []}},
                "caption": {"status": "unavailable", "backend": None, "reason": "offline"}}
    assert flatten_numbers(sections) == {"ana__sentiment.vader_compound": 0.6,
                                         "ana__entities.patterns.urls_count": 1.0,
                                         "ana__entities.patterns.money_count": 0.0}


def test_cli_trains_and_analyze_shows_the_prediction(planted, tmp_path, tiny_open_clip_spec):
    folder = planted[1]
    out = tmp_path / "cli-model.joblib"
    done = run_cli("effectiveness", "train", "--csv", str(folder / "creatives.csv"), "--target", "ctr",
                   "--tabular", "--model", tiny_open_clip_spec, "--offline", "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model_file"] == str(out) and report["beats_dummy"] and report["tabular"] == []
    done = run_cli("analyze", "--image", str(folder / "ad1.png"), "--image-root", str(folder), "--text",
                   "New collection", "--offline", "--model", tiny_open_clip_spec, "--effectiveness-model", str(out), "--json",
                   "--section", "effectiveness")
    assert done.returncode == 0, done.stderr
    sec = json.loads(done.stdout)["sections"]["effectiveness"]
    assert sec["status"] == "ok" and sec["target"] == "ctr" and 0 < sec["prediction"] < 0.1
    bad = run_cli("effectiveness", "train", "--csv", str(folder / "creatives.csv"), "--target", "nope",
                  "-o", str(tmp_path / "x.joblib"))
    assert bad.returncode == 2 and "no target column 'nope'" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_train_without_a_model_falls_back_to_the_demo_model_offline(tmp_path):
    """The model rule of every command: on main `effectiveness train` with no --model failed on the
    unreachable hub, where similarity, score and analyze fell back to the demo model with a note."""
    csv = write_creatives(tmp_path, rows=30)
    out = tmp_path / "m.joblib"
    done = run_cli("effectiveness", "train", "--csv", str(csv), "--target", "ctr", "--folds", "3", "--offline",
                   "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert "note: demo model" in done.stderr
    from clip_arena.effectiveness.model import load

    assert load(out).clip_model == "demo:finetuned"  # the model its features came from
