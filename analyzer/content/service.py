"""One analysis from what a user gives (an image path, URL or upload, a text), with the trained
effectiveness model when one is configured: shared by the CLI and the Analyze tab."""

from __future__ import annotations

from functools import lru_cache

from clip_arena.analyzer.content.report import analyze
from clip_arena.analyzer.policy import ImagePolicy
from clip_arena.core.settings import Settings


@lru_cache(maxsize=4)
def effectiveness_predictor(path: str):
    """Loaded once per file; a bad file is the user's error, said in one sentence."""
    from clip_arena.effectiveness.model import load
    from clip_arena.effectiveness.predict import predictor

    return predictor(load(path), path)


def run_analysis(image_source, text: str, settings: Settings, model: str | None = None,
                 only: set[str] | None = None, policy: ImagePolicy | None = None) -> dict:
    """`image_source`: a path or URL read under `policy` (default: the command line's), or an image."""
    policy = policy or ImagePolicy.for_cli(settings)
    image = policy.load(image_source) if image_source is not None else None
    predictor = effectiveness_predictor(settings.effectiveness_model) if settings.effectiveness_model else None
    return analyze(image, text, settings, model=model, only=only, predictor=predictor)
