"""Parsing of model spec strings (see DESIGN.md, encoder registry), and the local paths they name.

A catalog stores each method's spec with its local paths made absolute at embed time, so it loads
from any folder; a relative path in an older catalog is looked up in the catalog's folder, then in
the current folder (resolve_saved_spec)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from clip_arena.core.errors import ModelLoadError

BACKENDS = ("open_clip", "hf", "demo")
LOCAL_DIR = "local-dir:"  # open_clip's own scheme for a folder holding open_clip_config.json and weights
WEIGHTS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class ModelSpec:
    backend: str  # open_clip | hf | demo
    name: str  # architecture, config.json path, hub id, local dir, or demo name
    pretrained: str | None = None  # open_clip: pretrained tag or weights file

    def __str__(self) -> str:
        tail = f"@{self.pretrained}" if self.pretrained else ""
        return f"{self.backend}:{self.name}{tail}"


def parse_spec(spec: str) -> ModelSpec:
    spec = (spec or "").strip()
    backend, sep, rest = spec.partition(":")
    if not sep or backend not in BACKENDS or not rest:
        raise ModelLoadError(
            f"Model spec {spec!r} is not understood: use open_clip:ARCH@PRETRAINED, "
            "open_clip:CONFIG.json@WEIGHTS, hf:HUB_ID_OR_DIR, demo:base or demo:finetuned."
        )
    if backend == "open_clip":
        name, pretrained = _split_open_clip(rest)
        return ModelSpec("open_clip", name, pretrained)
    return ModelSpec(backend, rest)


def _split_open_clip(rest: str) -> tuple[str, str | None]:
    """NAME@WEIGHTS. A path may hold '@' (a folder named user@host), an architecture or a hub id never does."""
    if rest.startswith(LOCAL_DIR) or rest.endswith(".json"):
        return rest, None  # open_clip ignores weights given with a folder; a config alone: random init
    head, sep, weights = rest.partition(".json@")
    if sep:
        return head + ".json", weights or None
    name, _, weights = rest.partition("@")
    return name, weights or None


# -- the local files and folders a spec names -----------------------------------------------------
@dataclass(frozen=True)
class LocalPath:
    field: str  # "name" or "pretrained"
    path: str
    what: str  # "model folder", "model config file", "weights file": for messages
    certain: bool  # a path whether or not it exists; else only if it exists (a hub id looks the same)


def local_paths(spec: ModelSpec) -> list[LocalPath]:
    found = []
    if spec.backend == "open_clip":
        if spec.name.startswith(LOCAL_DIR):
            found.append(LocalPath("name", spec.name[len(LOCAL_DIR):], "model folder", True))
        elif spec.name.endswith(".json"):
            found.append(LocalPath("name", spec.name, "model config file", True))
        weights = spec.pretrained
        if weights and not weights.startswith("hf-hub:") and not spec.name.startswith(LOCAL_DIR):
            certain = _pathlike(weights) or weights.lower().endswith(WEIGHTS_SUFFIXES)
            found.append(LocalPath("pretrained", weights, "weights file", certain))
    elif spec.backend == "hf":
        # A hub id is NAME or ORG/NAME; more parts, or a path's start, can only be a folder.
        certain = _pathlike(spec.name) or spec.name.replace("\\", "/").count("/") >= 2
        found.append(LocalPath("name", spec.name, "model folder", certain))
    return found


def _pathlike(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~", ".\\", "..\\")) or os.path.isabs(text)


def with_path(spec: ModelSpec, part: LocalPath, path: str) -> ModelSpec:
    if part.field == "pretrained":
        return replace(spec, pretrained=path)
    return replace(spec, name=(LOCAL_DIR + path) if spec.name.startswith(LOCAL_DIR) else path)


def absolute_spec(spec: str, base: str | os.PathLike | None = None) -> str:
    """`spec` with each local path it names made absolute (under `base`, by default the current
    folder; ~ expanded): what a catalog stores, so that it loads from any folder. Hub names and
    architectures are kept; an ambiguous ORG/NAME becomes a path only if that folder exists."""
    parsed = parse_spec(spec)
    base = Path(base) if base is not None else Path.cwd()
    for part in local_paths(parsed):
        path = Path(part.path).expanduser()
        full = path if path.is_absolute() else base / path
        if part.certain or full.exists():
            parsed = with_path(parsed, part, os.path.abspath(full))
    return str(parsed)


def resolve_saved_spec(spec: str, folder: str | os.PathLike) -> str:
    """A spec read from a catalog in `folder`, made loadable from anywhere: a relative local path
    (catalogs made before paths were stored absolute) is looked up in the catalog's folder, then in
    the current folder. One that is in neither is a ModelLoadError naming it and both places."""
    parsed = parse_spec(spec)
    for part in local_paths(parsed):
        path = Path(part.path).expanduser()
        if path.is_absolute():
            continue  # the loader says so if it is missing
        places = [Path(folder).resolve(), Path.cwd()]
        found = next((p / path for p in places if (p / path).exists()), None)
        if found is not None:
            parsed = with_path(parsed, part, os.path.abspath(found))
        elif part.certain:
            raise ModelLoadError(f"The {part.what} {part.path} of model {spec} was not found: it is neither in "
                                 f"the catalog's folder ({places[0]}) nor in the current folder ({places[1]}).")
    return str(parsed)
