"""Which models the browser may choose: the configured ones only (`--model` plus `--browser-model`
or CLIP_ARENA_MODELS; the bundled demo models when no list is given). A spec typed or posted
by a browser is refused before anything is loaded, so no one can make the server download a hub
model or fill its memory; the command line may still load any spec."""

from __future__ import annotations

from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings


def browser_models(settings: Settings) -> list[str]:
    from clip_arena.models import known_specs

    extra = list(settings.browser_models) or [s for s in known_specs() if s.startswith("demo:")]
    return list(dict.fromkeys([settings.model, *extra]))


def check_browser_model(spec: str | None, settings: Settings) -> str:
    """The spec to load for a browser request: the default when none, else one of the choices."""
    if not spec:
        return settings.model
    allowed = browser_models(settings)
    if spec not in allowed:
        raise UserError(f"Model {spec[:80]!r} is not offered here; choose one of: {', '.join(allowed)}.")
    return spec
