"""Backend loaders: build an Encoder from a parsed spec. Errors become one clear sentence."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from urllib.parse import urlparse

from clip_arena.core.errors import ModelLoadError
from clip_arena.core.settings import ASSETS_DIR
from clip_arena.models.device import PRECISIONS
from clip_arena.models.encoders import HFClipEncoder, OpenClipEncoder
from clip_arena.models.spec import ModelSpec, local_paths

DEMO_MODELS_DIR = ASSETS_DIR / "models"
DEMO_NAMES = ("base", "finetuned")

LOCAL_HINT = (
    "to use a local copy instead, pass hf:/path/to/folder (saved with save_pretrained) "
    "or open_clip:CONFIG.json@WEIGHTS.safetensors"
)


def offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


_REACHABLE: dict[str, tuple[float, bool]] = {}
REACHABLE_TTL_S = 60.0


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """One TCP connect to the hub endpoint: huggingface_hub itself retries for minutes. The answer
    is kept a minute, so that loading several models (an analysis has four) probes once."""
    from huggingface_hub import constants

    seen = _REACHABLE.get(constants.ENDPOINT)
    if seen and time.monotonic() - seen[0] < REACHABLE_TTL_S:
        return seen[1]
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout_s).close()
        ok = True
    except OSError:
        ok = False
    _REACHABLE[constants.ENDPOINT] = (time.monotonic(), ok)
    return ok


@contextmanager
def hub_access(spec: ModelSpec | str, hint: str = LOCAL_HINT):
    """Load from the hub if it answers; else from the local cache only, failing fast."""
    from huggingface_hub import constants

    offline = offline_mode()
    unreachable = not offline and not hub_reachable()
    saved = constants.HF_HUB_OFFLINE
    if offline or unreachable:
        # huggingface_hub reads HF_HUB_OFFLINE once at import; --offline may come later.
        # Cached files still load; missing ones fail at once instead of after minutes of retries.
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as err:  # noqa: BLE001 - every hub failure becomes one sentence
        raise _hub_failure(spec, err, unreachable, hint) from err
    finally:
        constants.HF_HUB_OFFLINE = saved


def _hub_failure(spec: ModelSpec | str, err: BaseException, unreachable: bool = False,
                 hint: str = LOCAL_HINT) -> ModelLoadError:
    """Name the model, say why it could not be had, and how to point at a local file."""
    text = f"{type(err).__name__}: {err}"
    if unreachable:
        why = "the Hugging Face Hub could not be reached and it is not in the local cache"
    elif offline_mode():
        why = "offline mode is on (HF_HUB_OFFLINE=1 or --offline) and it is not in the local cache"
    elif any(s in text for s in ("404", "RepositoryNotFound", "not a valid model identifier", "EntryNotFound")):
        why = "it was not found on the Hugging Face Hub"
    else:
        why = "the Hugging Face Hub could not be reached"
    return ModelLoadError(f"Could not load model {spec}: {why}; {hint}.")


def _looks_local(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(name))


def _is_known_tag(name: str, tag: str) -> bool:
    import open_clip

    return tag in open_clip.list_pretrained_tags_by_model(name.replace("/", "-"))


# -- open_clip -----------------------------------------------------------------
def _register_config_file(config_path: Path) -> tuple[str, dict]:
    """Register a JSON model config with open_clip under a unique name; return (name, preprocess_cfg)."""
    import open_clip

    try:
        cfg = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"Model config {config_path} could not be read as JSON: {err}.") from err
    model_cfg = cfg.get("model_cfg", cfg)  # open_clip_config.json or a bare model config
    if not {"embed_dim", "vision_cfg", "text_cfg"} <= set(model_cfg):
        raise ModelLoadError(f"Model config {config_path} lacks embed_dim, vision_cfg or text_cfg.")
    digest = hashlib.sha1(str(config_path.resolve()).encode() + config_path.read_bytes()).hexdigest()[:12]
    name = f"clip-arena-{digest}"
    tmp = Path(tempfile.gettempdir()) / "clip-arena-configs"
    tmp.mkdir(exist_ok=True)
    (tmp / f"{name}.json").write_text(json.dumps(model_cfg))
    open_clip.add_model_config(tmp / f"{name}.json")
    return name, cfg.get("preprocess_cfg", {})


def _check_open_clip_folder(folder: Path, spec: ModelSpec) -> Path:
    """A local-dir model's folder, or the one file or folder that is missing, named (open_clip
    itself would build a model with random weights from a folder without weights, and say nothing)."""
    if not folder.is_dir():
        raise ModelLoadError(f"Model folder {folder} for {spec} does not exist"
                             + (" (the path is relative to the current folder)." if not folder.is_absolute() else "."))
    if not (folder / "open_clip_config.json").is_file():
        raise ModelLoadError(f"Model folder {folder} for {spec} has no open_clip_config.json.")
    if not any(next(folder.glob(f"*{suffix}"), None) for suffix in (".safetensors", ".bin", ".pth")):
        raise ModelLoadError(f"Model folder {folder} for {spec} holds no weights file "
                             "(*.safetensors, *.bin or *.pth).")
    return folder


def open_clip_parts(spec: ModelSpec, device: str = "cpu", precision: str = "fp32") -> dict:
    """Create an open_clip model the way the registry does, for inference or training.
    Returns model, train_transform, transform, tokenizer and model_cfg."""
    import open_clip

    name, pretrained, extra = spec.name, spec.pretrained, {}
    if name.endswith(".json"):
        config_path = Path(name).expanduser()
        if not config_path.is_file():
            raise ModelLoadError(f"Model config file {config_path} does not exist.")
        if pretrained and not Path(pretrained).expanduser().is_file():
            raise ModelLoadError(f"Weights file {pretrained} for model {spec} does not exist.")
        name, preprocess_cfg = _register_config_file(config_path)
        pretrained = str(Path(pretrained).expanduser()) if pretrained else None
        if preprocess_cfg:
            extra["force_preprocess_cfg"] = preprocess_cfg
    elif name.startswith("local-dir:"):
        name = "local-dir:" + str(_check_open_clip_folder(Path(name.split(":", 1)[1]).expanduser(), spec))
    elif not name.startswith("hf-hub:") and name.replace("/", "-") not in open_clip.list_models():
        raise ModelLoadError(f"open_clip has no architecture {name!r} (see open_clip.list_models()).")
    elif pretrained and not pretrained.startswith("hf-hub:") and _looks_local(pretrained):
        if not Path(pretrained).expanduser().is_file():
            raise ModelLoadError(f"Weights file {pretrained} for model {spec} does not exist.")
    elif pretrained and not _is_known_tag(name, pretrained):
        raise ModelLoadError(f"Could not load model {spec}: {pretrained!r} is neither a known "
                             f"pretrained tag for {name} nor an existing file.")

    from_hub = name.startswith("hf-hub:") or (pretrained is not None and not _looks_local(pretrained))
    try:
        with hub_access(spec) if from_hub else nullcontext():
            model, train_transform, transform = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, precision=precision, device=device, **extra
            )
            tokenizer = open_clip.get_tokenizer(name)
    except (OSError, ValueError, RuntimeError) as err:  # local files only: hub errors are handled above
        raise ModelLoadError(f"Could not load model {spec} from local files: {err}.") from err
    if name.startswith("local-dir:"):
        config_file = Path(name.split(":", 1)[1]).expanduser() / "open_clip_config.json"
        model_cfg = json.loads(config_file.read_text())["model_cfg"]
    else:
        model_cfg = open_clip.get_model_config(name)
    return {"model": model, "train_transform": train_transform, "transform": transform,
            "tokenizer": tokenizer, "model_cfg": model_cfg}


def load_open_clip(spec: ModelSpec, device: str, precision: str) -> OpenClipEncoder:
    parts = open_clip_parts(spec, device, precision)
    return OpenClipEncoder(str(spec), parts["model"], parts["transform"], parts["tokenizer"], device, precision)


def load_demo(spec: ModelSpec, device: str, precision: str) -> OpenClipEncoder:
    inner = demo_inner_spec(spec)
    folder = Path(inner.name.split(":", 1)[1])
    if not (folder / "open_clip_config.json").is_file():
        raise ModelLoadError(
            f"Demo model {spec} is missing from {folder}; regenerate it with `make demo`."
        )
    encoder = load_open_clip(inner, device, precision)
    encoder.spec = str(spec)
    return encoder


def demo_inner_spec(spec: ModelSpec) -> ModelSpec:
    """demo:NAME as the open_clip local-dir spec it stands for."""
    if spec.name not in DEMO_NAMES:
        raise ModelLoadError(f"There is no demo model {spec.name!r}; use demo:base or demo:finetuned.")
    return ModelSpec("open_clip", f"local-dir:{DEMO_MODELS_DIR / f'demo_{spec.name}'}")


# -- Hugging Face transformers ------------------------------------------------------
def load_hf(spec: ModelSpec, device: str, precision: str) -> HFClipEncoder:
    from transformers import AutoModel, AutoProcessor

    name = spec.name
    local = _looks_local(name) or local_paths(spec)[0].certain  # a/b/c is a folder, never a hub id
    if local:
        path = Path(name).expanduser()
        if not path.is_dir():
            raise ModelLoadError(f"Model folder {path} for {spec} does not exist.")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"Model folder {path} for {spec} has no config.json (save the model there "
                                 "with save_pretrained).")
        name = str(path)
    # Hide transformers' own retries and warnings: the error below says it in one sentence.
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        with nullcontext() if local else hub_access(spec):
            model = AutoModel.from_pretrained(name, dtype=PRECISIONS[precision])
            processor = AutoProcessor.from_pretrained(name)
    except (OSError, ValueError) as err:  # local folders only: hub errors are handled above
        raise ModelLoadError(f"Could not load model {spec} from {name}: {err}.") from err
    if not hasattr(model, "get_image_features") or not hasattr(model, "get_text_features"):
        raise ModelLoadError(f"Model {spec} is not an image-text model (no get_image_features).")
    model = model.to(device)
    return HFClipEncoder(str(spec), model, processor, device, precision)


LOADERS = {"open_clip": load_open_clip, "hf": load_hf, "demo": load_demo}


def load(spec: ModelSpec, device: str, precision: str):
    return LOADERS[spec.backend](spec, device, precision)
