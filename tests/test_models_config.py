"""The models file (clip_arena.models.config): what it accepts, and one sentence for each bad entry."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from clip_arena.core.errors import UserError
from clip_arena.models import config


def write(tmp_path, text: str, name: str = "models.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_and_toml_name_the_same_models(tmp_path):
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "b.json").write_text("{}")
    yaml_file = write(tmp_path, """
models:
  a: {spec: "demo:base", precision: fp32, batch_size: 32}
  b: {spec: "demo:finetuned", default: true, browser: false, calibration: cal/b.json}
""")
    toml_file = write(tmp_path, """
[models.a]
spec = "demo:base"
precision = "fp32"
batch_size = 32
[models.b]
spec = "demo:finetuned"
default = true
browser = false
calibration = "cal/b.json"
""", "models.toml")
    a, b = config.load(yaml_file, {}), config.load(toml_file, {})
    assert dict(a.entries) == dict(b.entries)
    assert a.default == "b" and a.browser_names() == ["a"]
    assert a.entries["b"].calibration == str(tmp_path / "cal" / "b.json")  # against the file's folder
    assert a.entries["a"].batch_size == 32 and a.entries["a"].browser


def test_the_first_model_is_the_default_when_none_is_marked_and_a_bare_spec_is_an_entry(tmp_path):
    cfg = config.load(write(tmp_path, "models:\n  one: demo:base\n  two: demo:finetuned\n"), {})
    assert cfg.default == "one" and cfg.entries["two"].spec == "demo:finetuned"


def test_environment_variables_add_models_for_a_configmap(tmp_path):
    env = {"CLIP_ARENA_MODEL__BASE": "demo:base",
           "CLIP_ARENA_MODEL__TUNED": json.dumps({"spec": "demo:finetuned", "default": True, "browser": False})}
    cfg = config.load(None, env)
    assert list(cfg.entries) == ["base", "tuned"] and cfg.default == "tuned" and cfg.source == "environment"
    # With a file too: the variables add to it, and replace an entry of the same name.
    both = config.load(write(tmp_path, "models:\n  base: demo:finetuned\n  other: demo:base\n"), env)
    assert both.entries["base"].spec == "demo:base" and set(both.entries) == {"base", "other", "tuned"}
    # The file's path from CLIP_ARENA_MODELS_FILE.
    path = write(tmp_path, "models:\n  x: demo:base\n", "other.yaml")
    assert list(config.load(None, {"CLIP_ARENA_MODELS_FILE": str(path)}).entries) == ["x"]


@pytest.mark.parametrize("body, words", [
    ("a: {spec: demo:base, colour: red}", ["model 'a'", "unknown key 'colour'"]),
    ("a: {spec: demo:base, default: 'yes please'}", ["model 'a'", "'default'", "true or false"]),
    ("a: {spec: 12}", ["model 'a'", "'spec'"]),
    ("a: {spec: 'nope:thing'}", ["model 'a'", "'spec'", "not understood"]),
    ("a: {spec: demo:base, precision: fp8}", ["model 'a'", "'precision'", "fp32"]),
    ("a: {spec: demo:base, batch_size: 0}", ["model 'a'", "'batch_size'"]),
    ("a: {spec: demo:base, batch_size: true}", ["model 'a'", "'batch_size'"]),
    ("a: {spec: demo:base, device: 'gpu please'}", ["model 'a'", "'device'"]),
    ("a: {spec: demo:base, calibration: missing.json}", ["model 'a'", "'calibration'", "does not exist",
                                                         "clip-arena models calibrate a"]),
    ("a: {spec: demo:base, calibration: /dev/zero}", ["model 'a'", "'calibration'", "/dev/zero is not a regular file"]),
    ("a: {spce: demo:base}", ["model 'a'", "unknown key 'spce' (did you mean 'spec'?)"]),
    ("a: {fusion: {b: 1}, precision: fp16}", ["model 'a'", "'precision' does not apply to a fusion"]),
    ("123: demo:base", ["model name 123 is read as a number, not text: quote it ('123'"]),
    ("a: {spec: demo:base, fusion: {b: 1}}", ["model 'a'", "either `spec`", "or `fusion`"]),
    ("a: [demo:base]", ["model 'a'", "mapping", "a list"]),
    ("'bad name!': demo:base", ["model name 'bad name!'"]),
    ("a: {spec: demo:base, default: true}\n  b: {spec: demo:base, default: true}", ["model 'b'", "only one", "'a'"]),
    ("a: {fusion: {ghost: 1}}", ["model 'a'", "'fusion'", "'ghost'", "not a model"]),
    ("a: {fusion: {a: 1}}", ["model 'a'", "the model itself"]),
    ("a: {fusion: {b: 1}}\n  b: {fusion: {a: 1}}", ["model 'a'", "'b'", "itself a fusion"]),  # a cycle
    ("a: demo:base\n  f: {fusion: {a: 1}}", ["model 'f'", "'a'", "no calibration"]),
    ("a: demo:base\n  f: {fusion: {a: -1}}", ["model 'f'", "weight of 'a'", "above 0"]),
    ("a: demo:base\n  f: {fusion: {a: .nan}}", ["model 'f'", "weight of 'a'"]),
    ("a: demo:base\n  f: {fusion: []}", ["model 'f'", "'fusion' must map"]),
])
def test_a_bad_entry_is_named_in_one_sentence(tmp_path, body, words):
    path = write(tmp_path, f"models:\n  {body}\n")
    with pytest.raises(UserError) as err:
        config.load(path, {})
    message = str(err.value)
    assert message.startswith(f"In {path}, ") and message.count("\n") == 0 and message.endswith(".")
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe not text", ["not UTF-8"]),
    (b"models: [unclosed", ["not valid YAML"]),
    (b"- a\n- b\n", ["`models` mapping"]),
    (b"models: {}\nextra: 1\n", ["unknown top-level key 'extra'"]),
    (b"models: {}\n", ["names none"]),
    (b"models:\n" + b"  x: demo:base\n" * 10 + b"#" * config.MAX_FILE_BYTES, ["larger than"]),
])
def test_a_file_that_is_not_a_models_file_is_said_in_one_sentence(tmp_path, content, words):
    path = tmp_path / "models.yaml"
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        config.load(path, {})
    assert str(err.value).count("\n") == 0 and all(w in str(err.value) for w in words), str(err.value)


def test_a_yaml_error_keeps_its_line_column_and_problem(tmp_path):
    path = write(tmp_path, "models:\n  a: {spec: demo:base\n  b: demo:base\n")
    with pytest.raises(UserError) as err:
        config.load(path, {})
    message = str(err.value)
    assert "not valid YAML (line 3, column 4: expected ',' or '}', but got ':'" in message and "\n" not in message


@pytest.mark.parametrize("body, words", [
    ("a: demo:base\n  a: demo:finetuned", ["line 3, column 3: 'a' is given twice (first on line 2)", "unique"]),
    ("a: {spec: demo:base, spec: demo:finetuned}", ["'spec' is given twice"]),
])
def test_a_name_or_key_given_twice_is_refused_not_overwritten(tmp_path, body, words):
    path = write(tmp_path, f"models:\n  {body}\n")
    with pytest.raises(UserError) as err:
        config.load(path, {})
    assert str(err.value).startswith(f"Models file {path}: ") and str(err.value).count("\n") == 0
    assert all(word in str(err.value) for word in words), str(err.value)


def test_weights_yaml_reads_as_text_are_numbers_when_finite(tmp_path):
    cal = tmp_path / "a.json"
    cal.write_text("{}")
    for weight, expected in (("1e308", 1e308), ("5e-1", 0.5), ("0.5", 0.5)):  # YAML 1.1: 1e308 is text
        path = write(tmp_path, f"models:\n  a: {{spec: demo:base, calibration: a.json}}\n  f: {{fusion: {{a: {weight}}}}}\n")
        assert config.load(path, {}).entries["f"].fusion == (("a", expected),)
    for weight in ("1e999", "inf", ".inf", "'nan'", "'1_0'", "'x'", "true"):
        path = write(tmp_path, f"models:\n  a: {{spec: demo:base, calibration: a.json}}\n  f: {{fusion: {{a: {weight}}}}}\n")
        with pytest.raises(UserError, match="the weight of 'a' must be a number above 0"):
            config.load(path, {})


def test_a_models_file_that_is_a_fifo_is_refused_at_once(tmp_path):
    import os

    os.mkfifo(tmp_path / "models.yaml")  # opened plainly, the read would wait for a writer forever
    with pytest.raises(UserError, match="models.yaml is not a regular file"):
        config.load(tmp_path / "models.yaml", {})
    with pytest.raises(UserError, match="is not a regular file"):
        config.load(tmp_path, {})  # a folder


def test_a_missing_file_and_a_bad_variable_are_said(tmp_path):
    with pytest.raises(UserError, match="cannot be read"):
        config.load(tmp_path / "absent.yaml", {})
    with pytest.raises(UserError, match="CLIP_ARENA_MODEL__X is not a JSON object"):
        config.load(None, {"CLIP_ARENA_MODEL__X": "{spec: no quotes"})
    with pytest.raises(UserError, match="at most 64"):
        config.load(None, {f"CLIP_ARENA_MODEL__M{i}": "demo:base" for i in range(65)})


# -- hostile input: whatever the file holds, a configuration or one UserError, never a crash ---------
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["demo:base", "demo:finetuned", "fp16", "cuda", "a", "b"]))
keys = st.sampled_from(sorted(config.SPEC_KEYS | config.FUSION_KEYS | {"extra"}))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5) | keys, inner, max_size=4)),
                      max_leaves=12)
entries = st.one_of(values, st.dictionaries(keys, values, max_size=5))
names = st.one_of(st.sampled_from(["a", "b", "c"]), st.text(max_size=12), st.integers())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(models=st.dictionaries(names, entries, max_size=4))
def test_hostile_entries_load_or_are_refused_in_one_sentence(tmp_path, models):
    try:
        cfg = config.validate(models, tmp_path, "models.yaml")
    except UserError as err:
        assert ("models.yaml" in str(err)) and "\n" not in str(err)
        return
    assert cfg.default in cfg.entries  # a configuration that loads is whole: every fusion member named
    for entry in cfg.entries.values():
        assert (entry.spec is None) == entry.is_fusion
        for member, weight in entry.fusion or ():
            assert member in cfg.entries and not cfg.entries[member].is_fusion and weight > 0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".yaml", ".toml"]))
def test_hostile_bytes_are_refused_in_one_sentence(tmp_path, raw, suffix):
    path = tmp_path / f"models{suffix}"
    path.write_bytes(raw)
    try:
        config.load(path, {})
    except UserError as err:
        assert "\n" not in str(err).strip()


# -- clip-arena models list | check | calibrate ---------------------------------------------------
def test_models_list_prints_what_would_load_without_loading(tmp_path, capsys):
    from clip_arena.cli.main import main

    path = write(tmp_path, "models:\n  a: {spec: 'demo:base', precision: fp32}\n  b: {spec: 'demo:finetuned', "
                           "default: true, browser: false}\n")
    assert main(["models", "list", "--models", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["default"] == "b" and [m["name"] for m in out["models"]] == ["a", "b"]
    assert out["models"][0] == {"name": "a", "spec": "demo:base", "fusion": None, "default": False, "browser": True,
                                "calibration": None, "precision": "fp32", "device": None, "batch_size": None}
    assert main(["models", "list", "--models", str(path)]) == 0
    text = capsys.readouterr().out
    assert "a  demo:base  (precision fp32)" in text and "b  demo:finetuned  (default; command line only)" in text


def test_models_check_loads_each_model_and_names_the_one_that_fails(tmp_path, capsys):
    from clip_arena.cli.main import main

    path = write(tmp_path, f"models:\n  a: demo:base\n  broken: open_clip:{tmp_path}/absent.json\n")
    assert main(["models", "check", "--models", str(path)]) == 2
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("a: ok, demo:base loaded in ") and "MB resident" in lines[0]
    assert lines[1].startswith("broken: FAILED, open_clip:") and "absent.json" in lines[1]
    assert "1 of 2 models did not load: broken." in err


def test_models_calibrate_saves_beside_the_models_file(tmp_path, capsys):
    pytest.importorskip("clip_arena.models.calibration")  # the calibration maths (its own branch of #24)
    from clip_arena.cli.main import main
    from clip_arena.index.catalog import read_catalog
    from clip_arena.core.settings import DEFAULT_CATALOG

    catalog = read_catalog(DEFAULT_CATALOG)
    rows = catalog.table.slice(0, 30).to_pylist()
    lines = ["image,caption,match"]
    for i, row in enumerate(rows):
        image = catalog.resolve_uri(row["image_uri"])
        lines.append(f'"{image}","{row["caption"]}",1')
        lines.append(f'"{image}","{rows[(i + 7) % len(rows)]["caption"]}",0')
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The entry may already name the calibration it is about to get.
    path = write(tmp_path, "models:\n  tuned: {spec: demo:finetuned, calibration: tuned.calibration.json}\n")
    assert main(["models", "calibrate", "tuned", "--pairs", str(tmp_path / "pairs.csv"), "--models", str(path)]) == 0
    out = capsys.readouterr().out
    assert "expected calibration error" in out and str(tmp_path / "tuned.calibration.json") in out
    curve = [line.split() for line in out.splitlines() if re.match(r"\s*\d+%-\d+%", line)]  # lo-hi mean observed pairs
    assert "predicted" in out and "observed" in out and curve  # the reliability curve, as the README says
    assert sum(int(row[-1].replace(",", "")) for row in curve) == 60  # every pair falls in one bin
    from clip_arena.models.calibration import Calibration

    assert Calibration.load(tmp_path / "tuned.calibration.json").name == "tuned"
    assert main(["models", "list", "--models", str(path)]) == 0  # the file exists now: the entry is valid


def test_similarity_command_scores_with_a_named_model_even_one_the_browser_is_not_offered(tmp_path, capsys):
    from PIL import Image

    from clip_arena.cli.main import main

    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "red.png")
    path = write(tmp_path, "models:\n  a: {spec: 'demo:base', default: true}\n  hidden: {spec: 'demo:base', "
                           "browser: false}\n")
    common = ["similarity", "--image", str(tmp_path / "red.png"), "--text", "a red square", "--models", str(path)]
    assert main([*common, "--model", "hidden", "--json"]) == 0
    named = json.loads(capsys.readouterr().out)
    assert named["name"] == "hidden" and named["model"] == "demo:base"
    assert main([*common, "--json"]) == 0  # the file's default
    assert json.loads(capsys.readouterr().out)["name"] == "a"
    assert main([*common, "--model", "demo:base", "--json"]) == 0  # a spec is still a spec
    plain = json.loads(capsys.readouterr().out)
    assert "name" not in plain and plain["results"][0]["cosine"] == named["results"][0]["cosine"]
    assert main([*common, "--model", "hiden"]) == 2
    assert "There is no model 'hiden' in " in capsys.readouterr().err


def test_score_command_scores_with_a_named_calibrated_model_or_fusion(tmp_path, capsys):
    """`score --models FILE --model NAME`: a calibrated model adds probability and percentile, a fusion
    fills them with the weighted mean of its members'; Ray refuses both in one sentence."""
    import csv

    import numpy as np
    from PIL import Image

    from clip_arena.cli.main import main
    from clip_arena.models import get_encoder
    from clip_arena.models.calibration import Calibration, fit_calibration, model_fingerprint

    for spec, name in (("demo:base", "a"), ("demo:finetuned", "b")):  # calibrations fitted on stand-in cosines
        cos = np.r_[np.linspace(-0.5, 0.3, 40), np.linspace(-0.1, 0.8, 40)]
        fit_calibration(cos, [0] * 40 + [1] * 40, method="platt", name=name, spec=spec,
                        fingerprint=model_fingerprint(get_encoder(spec))).save(tmp_path / f"{name}.json")
    path = write(tmp_path, "models:\n  a: {spec: 'demo:base', calibration: a.json}\n"
                           "  b: {spec: 'demo:finetuned', calibration: b.json}\n  ab: {fusion: {a: 1, b: 3}}\n")
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (250, 220, 40)]):
        Image.new("RGB", (64, 64), colour).save(tmp_path / f"{i}.png")
    (tmp_path / "in.csv").write_text("image,caption\n0.png,a red circle\n1.png,a green leaf\n2.png,a red circle\n"
                                     "gone.png,x\n")

    def score(name: str, *more: str) -> list[dict]:
        out = tmp_path / f"{name}.csv"
        code = main(["score", str(tmp_path / "in.csv"), "-o", str(out), "--models", str(path), "--model", name, *more])
        assert code == 0 and f"model {name} (" in capsys.readouterr().out
        with open(out) as f:
            return list(csv.DictReader(f))

    rows = {name: score(name) for name in ("a", "b", "ab")}
    cal_a = Calibration.load(tmp_path / "a.json")
    for row in rows["a"][:3]:
        assert float(row["probability"]) == pytest.approx(cal_a.probability(float(row["cosine"])), abs=1e-4)
        assert float(row["percentile"]) == pytest.approx(cal_a.percentile(float(row["cosine"])), abs=0.05)
    for a, b, ab in zip(rows["a"][:3], rows["b"][:3], rows["ab"][:3]):
        assert ab["cosine"] == "" and float(ab["probability"]) == pytest.approx(
            0.25 * float(a["probability"]) + 0.75 * float(b["probability"]), abs=2e-4)
    assert rows["ab"][3]["error"].startswith("not_found") and rows["ab"][3]["probability"] == ""
    for name, kind in (("ab", "a fusion"), ("a", "calibrated")):
        assert main(["score", str(tmp_path / "in.csv"), "-o", str(tmp_path / "ray.csv"), "--models", str(path),
                     "--model", name, "--engine", "ray"]) == 2
        assert f"--engine ray scores raw cosines only and {name} is {kind}" in capsys.readouterr().err
    assert not (tmp_path / "ray.csv").exists()
