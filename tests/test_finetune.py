"""Fine-tuning on CPU with a tiny model: the loss falls, checkpoints load and runs resume."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from clip_arena.finetune.scenarios import SCENARIOS
from clip_arena.finetune.train import TrainConfig, finetune
from clip_arena.index.catalog import build_table, catalog_meta, write_catalog
from clip_arena.models import get_encoder
from tiny_models import TINY_OPEN_CLIP_CFG

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (240, 220, 20),
           "black": (0, 0, 0), "white": (255, 255, 255), "purple": (130, 30, 160), "orange": (250, 140, 0)}


@pytest.fixture
def tiny_catalog(tmp_path):
    (tmp_path / "images").mkdir()
    rows = []
    for i, (name, rgb) in enumerate(COLOURS.items()):
        Image.new("RGB", (40, 40), rgb).save(tmp_path / "images" / f"{name}.png")
        rows.append({"image_id": name, "image_uri": f"images/{name}.png", "caption": f"a {name} square",
                     "split": "val" if i >= 6 else "train", "category": "warm" if i % 2 else "cool"})
    path = tmp_path / "catalog.parquet"
    write_catalog(path, build_table({k: [r[k] for r in rows] for k in rows[0]}, {}), catalog_meta({}, {}),
                  require_embeddings=False)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_OPEN_CLIP_CFG))
    return path, f"open_clip:{config}"


def _train_loss(model_spec, catalog_path):
    """Contrastive loss of a saved model on the train images with their captions."""
    from open_clip import ClipLoss

    from clip_arena.index.catalog import read_catalog

    enc = get_encoder(model_spec)
    cat = read_catalog(catalog_path, require_embeddings=False)
    frame = cat.frame()
    train = frame[frame["split"] == "train"]
    images = [Image.open(cat.resolve_uri(u)).convert("RGB") for u in train["image_uri"]]
    img = torch.from_numpy(enc.encode_images(images))
    txt = torch.from_numpy(enc.encode_texts(train["caption"].tolist()))
    return ClipLoss()(img, txt, enc.model.logit_scale.exp()).item()


def test_full_training_lowers_the_loss_and_saves_a_loadable_model(tiny_catalog, tmp_path):
    catalog, init = tiny_catalog
    zero = finetune(catalog, init, tmp_path / "zero", TrainConfig(scenario="zero_shot"), progress=False)
    before = _train_loss(f"open_clip:local-dir:{zero.model_dir}", catalog)
    cfg = TrainConfig(scenario="full", epochs=15, batch_size=6, lr=2e-3, warmup_steps=2, seed=1)
    result = finetune(catalog, init, tmp_path / "run", cfg, progress=False)
    after = _train_loss(f"open_clip:local-dir:{result.model_dir}", catalog)
    assert after < before - 0.2, (before, after)
    assert len(result.history) == 15 and {"train_loss", "recall@1", "recall@5"} <= set(result.history[-1])
    assert (tmp_path / "run" / "checkpoints" / "epoch_15.pt").is_file()
    assert json.loads((tmp_path / "run" / "history.json").read_text())[-1]["epoch"] == 15


def test_two_steps_then_resume_continues_the_same_run(tiny_catalog, tmp_path):
    catalog, init = tiny_catalog
    cfg = TrainConfig(scenario="dual_lora", epochs=2, batch_size=3, lr=1e-3, warmup_steps=1, seed=0)
    first = finetune(catalog, init, tmp_path / "run", cfg, progress=False)
    assert [h["step"] for h in first.history] == [2, 4]  # 6 train images, batches of 3
    longer = TrainConfig(**{**cfg.__dict__, "epochs": 3})
    resumed = finetune(catalog, init, tmp_path / "run", longer, resume=True, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.history[:2] == first.history and resumed.history[2]["step"] == 6
    enc = get_encoder(f"open_clip:local-dir:{resumed.model_dir}")  # LoRA merged: a plain open_clip model
    assert not any("lora" in k for k in enc.model.state_dict())
    with pytest.raises(Exception, match="another run"):
        finetune(catalog, init, tmp_path / "run", TrainConfig(scenario="text_lora", epochs=4), resume=True,
                 progress=False)


@pytest.mark.parametrize("scenario", ["linear_probe", "vision_lora", "text_lora"])
def test_scenarios_change_only_their_part(tiny_catalog, tmp_path, scenario):
    catalog, init = tiny_catalog
    zero = finetune(catalog, init, tmp_path / "zero", TrainConfig(scenario="zero_shot", seed=0), progress=False)
    run = finetune(catalog, init, tmp_path / scenario,
                   TrainConfig(scenario=scenario, epochs=3, batch_size=3, lr=5e-3, warmup_steps=1, seed=0),
                   progress=False)
    a = get_encoder(f"open_clip:local-dir:{zero.model_dir}").model.state_dict()
    b = get_encoder(f"open_clip:local-dir:{run.model_dir}").model.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    if scenario == "linear_probe":
        assert changed == {"visual.proj", "text_projection", "logit_scale"}
    elif scenario == "vision_lora":
        assert changed and all(k.startswith("visual.") or k == "logit_scale" for k in changed)
    else:
        assert changed and not any(k.startswith("visual.") for k in changed)


def test_every_scenario_is_known():
    assert set(SCENARIOS) == {"zero_shot", "linear_probe", "dual_lora", "vision_lora", "text_lora", "full"}


def test_finetune_cli(tiny_catalog, tmp_path):
    import subprocess
    import sys

    catalog, init = tiny_catalog
    proc = subprocess.run([sys.executable, "-m", "clip_arena.cli.main", "finetune", "--catalog", str(catalog), "--scenario",
                           "dual_lora", "--model", init, "-o", str(tmp_path / "cli_run"), "--epochs", "1",
                           "--batch-size", "3", "--accum-steps", "2",
                           "--caption-template", "{caption}, {category}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"model saved: open_clip:local-dir:{tmp_path / 'cli_run' / 'model'}" in proc.stdout
    assert json.loads(proc.stdout.splitlines()[0])["step"] == 1  # 2 batches, accumulated into 1 step
    bad = subprocess.run([sys.executable, "-m", "clip_arena.cli.main", "finetune", "--catalog", str(catalog), "--scenario",
                          "full", "--model", init, "-o", str(tmp_path / "x"), "--caption-template", "{colour}"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "colour" in bad.stderr and "Traceback" not in bad.stderr
