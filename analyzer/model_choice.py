"""Which models the browser may choose: the configured ones only (`--model` plus `--browser-model`
or CLIP_ARENA_MODELS; the bundled demo models when no list is given). A spec typed or posted
by a browser is refused before anything is loaded, so no one can make the server download a hub
model or fill its memory; the command line may still load any spec.

With a models file (--models FILE, CLIP_ARENA_MODELS_FILE: models/live.py), the choices are its
NAMEs with `browser: true`, read from the live set on each call, so a reload changes them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from clip_arena.core.errors import UserError
from clip_arena.core.settings import Settings


@dataclass(frozen=True)
class Chosen:
    """The model a request uses: `handle` (a NAME of the live models file) when there is one, else
    `spec` under the --model rules. `settings` carry the entry's device and precision."""

    spec: str
    settings: Settings
    handle: object | None = None  # models.live.Handle

    @property
    def label(self) -> str:
        return self.handle.label if self.handle is not None else self.spec


def _live(settings: Settings):
    from clip_arena.models.live import active

    return active(settings)


def browser_models(settings: Settings, fusions: bool = False) -> list[str]:
    live = _live(settings)
    if live is not None:
        return live.snapshot.browser_names(fusions)
    from clip_arena.models import known_specs

    extra = list(settings.browser_models) or [s for s in known_specs() if s.startswith("demo:")]
    return list(dict.fromkeys([settings.model, *extra]))


def default_choice(settings: Settings, fusions: bool = False) -> str | None:
    live = _live(settings)
    return live.snapshot.browser_default(fusions) if live is not None else settings.model


def choose(name: str | None, settings: Settings, fusions: bool = False) -> Chosen:
    """The model for a browser request: the default when none, else one of the choices (a fusion
    only where the tab scores one). The live snapshot is read once: the request keeps its handle."""
    live = _live(settings)
    if live is None:
        return Chosen(check_browser_model(name, settings), settings)
    handle = live.snapshot.pick(name, fusions=fusions)
    entry = handle.entry
    if handle.fusion is not None:
        return Chosen(handle.spec, settings, handle)
    own = replace(settings, model=entry.spec, model_named=True, device=entry.device or settings.device,
                  precision=entry.precision or settings.precision)
    return Chosen(entry.spec, own, handle)


def check_browser_model(spec: str | None, settings: Settings) -> str:
    """The spec to load for a browser request: the default when none, else one of the choices
    (with a models file, a NAME's spec)."""
    if _live(settings) is not None:
        return choose(spec, settings).spec
    if not spec:
        return settings.model
    allowed = browser_models(settings)
    if spec not in allowed:
        raise UserError(f"Model {spec[:80]!r} is not offered here; choose one of: {', '.join(allowed)}.")
    return spec
