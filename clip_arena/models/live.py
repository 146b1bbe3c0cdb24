"""The running set of named models (the models file, models/config.py), swapped without a restart.

A Snapshot is immutable: the validated configuration and, per NAME, a Handle with its loaded encoder
(or fusion). A request takes `live.snapshot` once and uses that one object to its end, so it never
mixes two models. A reload (the file changed, SIGHUP, or an admin's button) validates and loads the new
set beside the old one, off the request path, then swaps one reference under a lock; encoders that no
model names any more are dropped from the registry's cache, so their memory is returned when the last
request still holding the old snapshot ends. A reload that fails keeps the old set and says why."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from clip_arena.core.errors import UserError
from clip_arena.models import config as models_config
from clip_arena.models.config import ModelEntry, ModelsConfig

log = logging.getLogger(__name__)
POLL_S = float(os.environ.get("CLIP_ARENA_MODELS_POLL_S") or 1.0)  # how often the watcher looks at the file


@dataclass(frozen=True)
class Handle:
    """One named model, ready to score: an encoder (with its calibration, if any) or a fusion."""

    name: str
    entry: ModelEntry
    spec: str  # the spec, or the fusion's description
    encoder: object | None = None  # None for a fusion
    calibration: object | None = None
    fusion: object | None = None
    key: tuple | None = None  # the registry's cache key of the encoder

    @property
    def label(self) -> str:
        """Which model answered, as results say it: NAME (spec)."""
        return f"{self.name} ({self.spec})"


@dataclass(frozen=True)
class Snapshot:
    config: ModelsConfig
    handles: Mapping[str, Handle]
    loaded_at: float  # time.time()
    signature: tuple = ()  # the files it was read from, as stat saw them
    withdrawn: frozenset = frozenset()  # NAMEs an earlier set offered the browser and a reload took away

    def browser_names(self, fusions: bool = True) -> list[str]:
        return self.config.browser_names(fusions)

    def browser_default(self, fusions: bool = True) -> str | None:
        names = self.browser_names(fusions)
        return self.config.default if self.config.default in names else (names[0] if names else None)

    def pick(self, name: str | None, *, browser: bool = True, fusions: bool = True) -> Handle:
        """The handle for a request: the default when none is named; from a browser, only a model offered
        there (browser: true), and a fusion only where the tab scores one."""
        if not name:
            name = self.browser_default(fusions) if browser else self.config.default
            if name is None:
                raise UserError("No model is offered in the browser here (every model in the models file has "
                                "browser: false).")
        offered = self.browser_names(fusions) if browser else list(self.handles)
        if name not in offered:
            if browser and name in self.withdrawn:  # a page opened before the reload still shows it
                what = "was removed" if name not in self.handles else "is no longer offered in the browser"
                raise UserError(f"The models file changed since this page loaded: {str(name)[:80]!r} {what}; choose "
                                f"one of: {', '.join(offered)} (reload the page for the new list).")
            raise UserError(f"Model {str(name)[:80]!r} is not offered here; choose one of: {', '.join(offered)}.")
        return self.handles[name]


@dataclass
class Status:
    source: str = ""
    loaded_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    reloads: int = 0  # swaps done since the start

    def lines(self, snapshot: Snapshot | None) -> list[str]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.loaded_at)) if self.loaded_at else "never"
        out = [f"models: {self.source}, loaded {when}, {self.reloads} reloads"]
        if snapshot is not None:
            out += [f"  {h.name}: {h.spec}" + (" (default)" if h.name == snapshot.config.default else "")
                    + ("" if h.entry.browser else " (command line only)")
                    + (" calibrated" if h.calibration is not None else "") for h in snapshot.handles.values()]
        if self.last_error:
            failed = time.strftime("%H:%M:%S", time.localtime(self.last_error_at))
            out.append(f"last reload failed at {failed}, the models above stay in use: {self.last_error}")
        return out


def _registry_loader(spec: str, device: str | None, precision: str | None):
    from clip_arena.models.registry import cache_key, get_encoder

    return get_encoder(spec, device, precision), cache_key(spec, device, precision)


def _registry_release(keys) -> list[str]:
    from clip_arena.models.registry import release

    return release(keys)


class LiveModels:
    """The models of one models file (and/or CLIP_ARENA_MODEL__<NAME> variables), reloadable."""

    def __init__(self, path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None,
                 loader: Callable = _registry_loader, releaser: Callable = _registry_release,
                 device: str | None = None, precision: str | None = None):
        self.path = str(path) if path else None
        self._environ = dict(os.environ if environ is None else environ)
        self._load_encoder, self._release = loader, releaser
        self._device, self._precision = device, precision  # the command line's, for entries that name none
        self._snapshot: Snapshot | None = None
        self._swap_lock = threading.Lock()
        self._reload_lock = threading.Lock()  # one reload at a time; requests never wait for it
        self._owned: set[tuple] = set()  # registry keys this object loaded, released when no model names them
        self.status = Status(source=self.path or "environment")
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- reading --------------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """The live set: take it once per request and use that object to the request's end."""
        snap = self._snapshot
        if snap is None:
            raise UserError("The models file has not been loaded yet.")
        return snap

    def status_lines(self) -> list[str]:
        return self.status.lines(self._snapshot)

    # -- reloading ------------------------------------------------------------------------------
    def _signature(self, cfg: ModelsConfig | None = None) -> tuple:
        """What the watcher compares: the models file and the calibration files, as stat sees them."""
        paths = [self.path] if self.path else []
        cfg = cfg or (self._snapshot.config if self._snapshot else None)
        if cfg is not None:
            paths += sorted({e.calibration for e in cfg.entries.values() if e.calibration})
        out = []
        for p in paths:
            try:
                st = os.stat(p)  # follows links: a ConfigMap swaps its ..data link, the file's stat changes
                out.append((p, st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append((p, None))
        return tuple(out)

    def reload(self, reason: str = "reload") -> bool:
        """Validate and load the configuration, then swap it in; False (and status.last_error, and a
        log line) when it fails or nothing changed. Never raises for a bad file."""
        with self._reload_lock:
            old = self._snapshot
            try:
                cfg = models_config.load(self.path, self._environ)
                signature = self._signature(cfg)
                calibrations = [item for item in signature if item[0] != self.path]
                if (old is not None and cfg.digest == old.config.digest
                        and calibrations == [item for item in old.signature if item[0] != self.path]):
                    if self.status.last_error:  # a broken file put back as it was: said, as the error was
                        self.status.last_error = None
                        self._say(f"models: reloaded {self.status.source} ({reason}): unchanged, the earlier error "
                                  "is gone")
                    return False
                snap = self._build(cfg, old, signature)
            except Exception as err:  # noqa: BLE001 - any failure keeps the old set; said, never raised
                message = str(err).strip() or type(err).__name__
                if not isinstance(err, UserError):
                    message = f"{type(err).__name__}: {message}"
                self.status.last_error, self.status.last_error_at = message, time.time()
                self._release_unused()  # what the failed attempt loaded and nothing uses
                self._say(f"models: reload ({reason}) failed, the previous models stay in use: {message}",
                          warn=True)
                return False
            with self._swap_lock:
                self._snapshot = snap  # the swap: one reference
                self.status.loaded_at = snap.loaded_at
                had_error, self.status.last_error = self.status.last_error, None
                self.status.reloads += old is not None
            released = self._release_unused()
            names = ", ".join(f"{h.name}={h.spec}" for h in snap.handles.values())
            self._say(f"models: {reason}: now {names}" + (f"; released {', '.join(released)}" if released else "")
                      + (" (the earlier error is gone)" if had_error else ""))
            return True

    @staticmethod
    def _say(line: str, warn: bool = False) -> None:
        """A reload's outcome, on the server's console (where an operator looks); a failure in the log too."""
        if warn:
            log.warning("%s", line)
        print(line, flush=True)

    def _build(self, cfg: ModelsConfig, old: Snapshot | None, signature: tuple) -> Snapshot:
        handles: dict[str, Handle] = {}
        now = {item[0]: item[1:] for item in signature}
        before = {item[0]: item[1:] for item in old.signature} if old else {}
        for entry in cfg.entries.values():
            if entry.is_fusion:
                continue
            previous = old.handles.get(entry.name) if old else None
            if previous is not None and previous.entry == entry and (
                    not entry.calibration or before.get(entry.calibration) == now.get(entry.calibration)):
                handles[entry.name] = previous  # unchanged: kept as it is, nothing loaded again
                continue
            try:
                encoder, key = self._load_encoder(entry.spec, entry.device or self._device,
                                                  entry.precision or self._precision)
                self._owned.add(key)
                calibration = None
                if entry.calibration:
                    from clip_arena.models.calibration import Calibration

                    calibration = Calibration.load(entry.calibration)
                    calibration.check(encoder)  # made for these weights, or refused
            except UserError as err:  # which model of the file, then why
                raise UserError(f"Model {entry.name!r} ({entry.spec}): {err}") from err
            handles[entry.name] = Handle(entry.name, entry, entry.spec, encoder, calibration, key=key)
        for entry in cfg.entries.values():
            if entry.is_fusion:
                from clip_arena.models.fusion import Fusion, Member

                try:
                    fusion = Fusion([Member(n, w, handles[n].encoder, handles[n].calibration) for n, w in entry.fusion],
                                    name=entry.name)
                except UserError as err:
                    raise UserError(f"Model {entry.name!r} ({entry.describe()}): {err}") from err
                handles[entry.name] = Handle(entry.name, entry, fusion.describe(), fusion=fusion)
        ordered = {name: handles[name] for name in cfg.entries}
        withdrawn = (old.withdrawn | set(old.browser_names())) - set(cfg.browser_names()) if old else set()
        return Snapshot(cfg, ordered, time.time(), signature, frozenset(withdrawn))

    def _release_unused(self) -> list[str]:
        """Every encoder this object ever loaded that no live model names is dropped from the registry,
        again on each reload: one a request re-cached meanwhile (get_encoder by spec) goes too."""
        snap = self._snapshot
        live = {h.key for h in snap.handles.values()} if snap else set()
        unused = self._owned - live
        return self._release(unused) if unused else []

    def reload_in_background(self, reason: str) -> threading.Thread:
        thread = threading.Thread(target=self.reload, args=(reason,), daemon=True, name="models reload")
        thread.start()
        return thread

    def watch(self, interval: float | None = None) -> None:
        """Poll the models file (and calibration files) every `interval` s; reload on a change."""
        if self._watcher is not None or not self.path:
            return
        interval = interval or POLL_S

        def _poll():
            seen = self._snapshot.signature if self._snapshot else self._signature()
            while not self._stop.wait(interval):
                try:
                    now = self._signature()
                    if now != seen:
                        seen = now
                        self.reload("the models file changed")
                except Exception:  # noqa: BLE001 - the watcher outlives any one bad moment
                    log.exception("models: the watcher's reload failed")

        self._watcher = threading.Thread(target=_poll, daemon=True, name="models watcher")
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()


def load_one(cfg: ModelsConfig, name: str | None, device: str | None = None, precision: str | None = None) -> Handle:
    """One model of a configuration, for a command: NAME (the default when None), loaded with its
    calibration, or a fusion with its members; the file's other models are not loaded."""
    name = name or cfg.default
    if name not in cfg.entries:
        raise UserError(f"There is no model {name[:80]!r} in {cfg.source}; it names {', '.join(cfg.entries)}.")
    entry = cfg.entries[name]
    needed = [m for m, _ in entry.fusion] if entry.is_fusion else []
    sub = ModelsConfig({n: cfg.entries[n] for n in [*needed, name]}, cfg.source, cfg.digest)
    models = LiveModels(device=device, precision=precision)
    return models._build(sub, None, ()).handles[name]


# -- the process's live models (serve starts them; the tabs ask for them) -------------------------
_ACTIVE: dict[str | None, LiveModels] = {}
_ACTIVE_LOCK = threading.Lock()


def start(settings, watch: bool = True) -> LiveModels:
    """The live models of `settings` (--models FILE, CLIP_ARENA_MODEL__<NAME>), loaded now; UserError
    when the first load fails (a server must not start without its models)."""
    path = settings.models_file
    with _ACTIVE_LOCK:
        live = _ACTIVE.get(path)
        if live is None:
            live = LiveModels(path, device=settings.device, precision=settings.precision)
            if not live.reload("start"):
                raise UserError(live.status.last_error or "The models could not be loaded.")
            _ACTIVE[path] = live
    if watch:
        live.watch()
    return live


def active(settings) -> LiveModels | None:
    """The live models serving `settings`, or None when it names no models file (the --model rules apply)."""
    if not uses_models_config(settings):
        return None
    return _ACTIVE.get(settings.models_file)


def uses_models_config(settings) -> bool:
    return bool(getattr(settings, "models_file", None)) or any(k.startswith(models_config.ENV_PREFIX) for k in os.environ)


def install_sighup(live: LiveModels) -> bool:
    """SIGHUP reloads (as daemons do), when this is the main thread and the platform has the signal."""
    import signal

    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGHUP, lambda signum, frame: live.reload_in_background("SIGHUP"))
    return True


__all__ = ["Handle", "LiveModels", "Snapshot", "active", "install_sighup", "start"]
