"""Parsing of model spec strings (see DESIGN.md, encoder registry)."""

from __future__ import annotations

from dataclasses import dataclass

from clip_arena.core.errors import ModelLoadError

BACKENDS = ("open_clip", "hf", "demo")


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
        # '@' separates architecture from weights; a path may itself hold '@', so split on the last.
        name, at, pretrained = rest.rpartition("@")
        if not at:
            name, pretrained = rest, None
        return ModelSpec("open_clip", name, pretrained or None)
    return ModelSpec(backend, rest)
