"""Saving a trained model as an open_clip local-dir folder the registry loads as
open_clip:local-dir:FOLDER (open_clip_config.json + open_clip_model.safetensors)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def save_local_dir(model: torch.nn.Module, model_cfg: dict, folder: Path, dtype: torch.dtype = torch.float32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    preprocess = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    preprocess.pop("size", None)  # derived from the model's image_size on load
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}, indent=2))
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return folder
