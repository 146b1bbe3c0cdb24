"""A fine-tune on a user's own small catalog: inputs checked before the model loads, warmup sized to
the run, a warning when the run is too short, and only the last and best checkpoints kept."""

import json
import subprocess
import sys

import pytest

from clip_arena.finetune.checkpoints import best_record, saved_epochs
from clip_arena.finetune.plan import warmup_for
from clip_arena.finetune.train import TrainConfig, finetune
from clip_arena.index.catalog import build_table, catalog_meta, read_catalog, write_catalog
from clip_arena.models import get_encoder
from clip_arena.cli.main import main
from conftest import with_project
from test_finetune import tiny_catalog  # noqa: F401 - the fixture

# A model spec that fails the moment anything tries to load it: an error that names the catalog, not
# this file, was found before any model loaded.
UNLOADABLE = "open_clip:/nonexistent/never-loaded.json"


def _without_split(catalog_path, tmp_path):
    cat = read_catalog(catalog_path, require_embeddings=False)
    table = cat.table.drop_columns(["split"])
    path = tmp_path / "nosplit.parquet"
    write_catalog(path, table, catalog_meta({}, {}), require_embeddings=False)
    return path


def test_a_catalog_without_split_is_refused_before_the_model_loads_and_the_fix_is_named(tiny_catalog, tmp_path):  # noqa: F811
    """On main: 22 s of model loading, then 'no split column' without a way out."""
    catalog, _ = tiny_catalog
    path = _without_split(catalog, tmp_path)
    # The real command in a fresh process, which then tells whether open_clip was even imported.
    script = ("import sys; from clip_arena.cli.main import main; code = main(sys.argv[1:]); "
              "print('open_clip imported' if 'open_clip' in sys.modules else 'open_clip not imported'); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script, "finetune", "--catalog", str(path), "--scenario", "dual_lora",
                           "--model", UNLOADABLE, "-o", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300, env=with_project())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "has no split column" in proc.stderr and "--split 80/10/10" in proc.stderr
    assert "clip-arena embed" in proc.stderr and "never-loaded" not in proc.stderr
    assert proc.stdout.strip() == "open_clip not imported"
    assert not (tmp_path / "run").exists()  # nothing written for a run that cannot start


@pytest.mark.parametrize("change, args, message", [
    ("no_train", [], "has no rows with split 'train' (it has val 8)"),
    (None, ["--caption-template", "{caption}, {colour}"], "names colour, which the catalog does not have"),
    (None, ["--epochs", "0"], "--epochs must be 1 or more"),
    (None, ["--batch-size", "-3"], "--batch-size must be 1 or more"),
    (None, ["--lr", "nan"], "--lr must be above 0"),
    (None, ["--warmup-ratio", "1.5"], "--warmup-ratio must be between 0 and 1"),
    (None, ["--keep-checkpoints", "0"], "--keep-checkpoints must be 1 or more"),
])
def test_bad_inputs_are_refused_before_the_model_loads(tiny_catalog, tmp_path, capsys, change, args, message):  # noqa: F811
    catalog, _ = tiny_catalog
    if change == "no_train":
        cat = read_catalog(catalog, require_embeddings=False)
        table = cat.table.set_column(cat.table.column_names.index("split"), "split",
                                     build_table({"split": ["val"] * len(cat)}, {}).column("split"))
        write_catalog(catalog, table, catalog_meta({}, {}), require_embeddings=False)
    code = main(["finetune", "--catalog", str(catalog), "--scenario", "full", "--model", UNLOADABLE,
                 "-o", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "never-loaded" not in err
    assert len(err.strip().splitlines()) == 1


def test_only_the_last_and_the_best_checkpoints_are_kept(tiny_catalog, tmp_path):  # noqa: F811
    """On main every epoch kept its checkpoint: 40 epochs, 1.9 GB for a 17 MB model."""
    catalog, init = tiny_catalog
    cfg = TrainConfig(scenario="full", epochs=5, batch_size=6, lr=5e-3, warmup_steps=1, seed=0)
    result = finetune(catalog, init, tmp_path / "run", cfg, progress=False)
    best = best_record(result.history)
    assert best is not None and result.best == best
    kept = saved_epochs(tmp_path / "run" / "checkpoints")
    assert kept == sorted({5, best["epoch"]})
    if best["epoch"] != 5:  # the best epoch's model is saved beside the last one, ready to load
        assert result.best_dir == tmp_path / "run" / "model_best"
        get_encoder(f"open_clip:local-dir:{result.best_dir}").encode_texts(["a red square"])
    # Two recent ones on request; a resumed run keeps pruning by the same rule.
    two = TrainConfig(**{**cfg.__dict__, "keep_checkpoints": 2})
    finetune(catalog, init, tmp_path / "two", two, progress=False)
    best_two = best_record(json.loads((tmp_path / "two" / "history.json").read_text()))
    assert saved_epochs(tmp_path / "two" / "checkpoints") == sorted({4, 5, best_two["epoch"]})
    longer = finetune(catalog, init, tmp_path / "two", TrainConfig(**{**two.__dict__, "epochs": 7}), resume=True,
                      progress=False)
    assert saved_epochs(tmp_path / "two" / "checkpoints") == sorted({6, 7, best_record(longer.history)["epoch"]})


def test_warmup_is_a_share_of_the_run_so_a_short_run_reaches_its_learning_rate(tiny_catalog, tmp_path):  # noqa: F811
    """On main the warmup was 20 steps whatever the run: 5 steps never got past a quarter of --lr."""
    catalog, init = tiny_catalog
    result = finetune(catalog, init, tmp_path / "run", TrainConfig(scenario="full", epochs=5, batch_size=6, lr=1e-3),
                      progress=False)
    assert [h["step"] for h in result.history] == [1, 2, 3, 4, 5]
    assert result.history[0]["lr"] == pytest.approx(1e-3)  # warmup: 10% of 5 steps, one step
    assert result.history[-1]["lr"] < result.history[1]["lr"]  # then the cosine decay
    assert warmup_for(1000, None, 0.1) == 100 and warmup_for(5, None, 0.1) == 1 and warmup_for(5, 3, 0.1) == 3


def test_a_run_too_short_to_learn_says_so_and_what_to_change(tiny_catalog, tmp_path, capsys):  # noqa: F811
    """On main the default run on a small catalog changed nothing and said nothing."""
    catalog, init = tiny_catalog
    base = ["finetune", "--catalog", str(catalog), "--scenario", "dual_lora", "--model", init, "--epochs", "2"]
    assert main([*base, "-o", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert ("warning: this run makes only 2 optimiser steps (6 train images in batches of 6: 1 step per epoch "
            "x 2 epochs)") in err
    assert "--epochs 100 gives 100" in err and "--batch-size" in err
    assert main([*base, "-o", str(tmp_path / "run2"), "--warmup-steps", "5"]) == 0
    assert "all 2 optimiser steps of this run are inside the 5-step warmup" in capsys.readouterr().err


def test_finetune_help_gives_each_numbers_default_and_meaning(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "passes over the train rows (default 5)" in text
    assert "pairs per batch" in text and "(default 64)" in text
    assert "peak learning rate" in text and "(default 5e-4)" in text
    assert "--keep-checkpoints N" in text and "besides the best by validation recall" in text


def test_the_best_epoch_is_the_latest_among_equal_recalls():
    history = [{"epoch": e, "recall@1": r1, "recall@5": 1.0, "recall@10": 1.0}
               for e, r1 in ((1, 0.25), (2, 0.5), (3, 0.5), (4, 0.25))]
    assert best_record(history)["epoch"] == 3
    assert best_record([{"epoch": 1, "train_loss": 1.0}]) is None  # no val rows: no best, the last is kept
