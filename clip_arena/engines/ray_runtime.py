"""Ray for `--engine ray`: the install hint, connecting (a local instance or `--ray-address`), and
the one pipeline both commands run: numbered parts -> decoding in CPU tasks -> encoding in a pool
of actors that each load the model once -> parts back to the driver as they finish."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from clip_arena.core.errors import UserError

INSTALL_HINT = "--engine ray needs Ray, which is not installed: pip install 'clip-arena[ray]'."


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start Ray on this machine; "auto", "HOST:6379" or "ray://HOST:10001"
    actors: int = 1  # encoding actors, each holding one copy of the model
    gpus_per_actor: float = 0.0  # 0: actors encode on CPU
    part_rows: int = 256  # rows (or images) per part: the unit of scheduling, of output and of resume

    def __post_init__(self):
        if self.actors < 1 or self.part_rows < 1 or not self.gpus_per_actor >= 0:
            raise UserError("--actors and --part-rows must be at least 1, and --gpus-per-actor at least 0.")


def require_ray():
    """Import Ray Data, or say in one sentence how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise UserError(INSTALL_HINT) from err
    return ray


@contextmanager
def ray_session(options: RayOptions, num_cpus: int | None = None):
    """Connect to (or start) Ray for one job; a session already open (tests, notebooks) is reused
    and left open. `num_cpus` caps a local instance (default: every core)."""
    if options.address is None and "RAY_AUTH_MODE" not in os.environ and "ray" not in sys.modules:
        # Ray's servers listen on every interface: a one-off token keeps the network out of a local
        # instance. Ray reads it when imported, so it is set before, and kept for the process's life.
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # Ray core's internal warnings, not the user's
    ray = require_ray()
    started, pythonpath = False, os.environ.get("PYTHONPATH")
    if not ray.is_initialized():
        kwargs = {}
        if options.address is None:
            kwargs = {"include_dashboard": False, "num_cpus": num_cpus}
            # Workers started here import this very checkout (on a cluster, install clip-arena on
            # every node instead).
            _prepend_pythonpath(str(Path(__file__).resolve().parents[2]))  # the folder holding clip_arena/
        try:
            ray.init(address=options.address, log_to_driver=False, logging_level=logging.ERROR, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            _set_pythonpath(pythonpath)
            where = options.address or "this machine"
            raise UserError(f"Could not start or reach Ray at {where}: {str(err).splitlines()[0]}") from err
        started = True
    for name in ("ray", "ray.data"):  # Ray Data's own notices are not the user's business
        logging.getLogger(name).setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours is the one progress bar
    context.print_on_execution_start = False
    try:
        if options.address is None:
            _check_fits(ray.cluster_resources(), options)
        yield ray
    finally:
        if started:
            ray.shutdown()
            _set_pythonpath(pythonpath)


def _set_pythonpath(value: str | None) -> None:
    if value is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = value


def _check_fits(resources: dict, options: RayOptions) -> None:
    """On this machine, actors that can never all start would make Ray wait for ever: say so instead.
    (A cluster may still grow, so there Ray's own waiting is left alone.)"""
    gpus, cpus = resources.get("GPU", 0), resources.get("CPU", 0)
    n, g = options.actors, options.gpus_per_actor
    if g and n * g > gpus:
        raise UserError(f"--actors {n} with --gpus-per-actor {g:g} need {n * g:g} GPUs; this machine has {gpus:g}.")
    needed = n + (1 if g else 0)  # a CPU per actor, and one for the decoding tasks beside GPU actors
    if needed > cpus:
        raise UserError(f"--actors {n} need {needed} CPUs here; this machine gives Ray {cpus:g}: use fewer actors.")


def _prepend_pythonpath(folder: str) -> None:
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if folder not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *paths])


def actors_on_cuda(options: RayOptions, device: str | None) -> bool:
    """Whether the actors encode on a GPU: the driver's device says nothing about theirs."""
    return options.gpus_per_actor > 0 and (device or "auto") != "cpu"


def run_parts(parts: Iterable[tuple[int, bytes]], decode: Callable[[bytes], bytes], actor_class: type,
              options: RayOptions) -> Iterator[tuple[int, bytes]]:
    """(part index, payload) in -> (part index, result) out, in completion order.

    Each input part is put in Ray's object store as it is read (it spills to disk under pressure), so
    the driver holds references, not data. `decode` runs in CPU tasks; `actor_class()` is built once
    per actor (it loads the model) and called on each decoded part."""
    import pyarrow as pa
    import ray
    import ray.data

    refs = [ray.put(pa.table({"part": [index], "payload": [payload]})) for index, payload in parts]
    if not refs:
        return

    def decode_batch(batch):
        return {"part": batch["part"], "payload": [decode(p) for p in batch["payload"]]}

    dataset = ray.data.from_arrow_refs(refs).map_batches(decode_batch, batch_size=1, batch_format="numpy",
                                                         num_cpus=1)
    # With GPUs the two stages have different resources and run apart: decoding in CPU tasks,
    # encoding on GPU actors. On CPU-only actors Ray fuses decoding into the actors.
    dataset = dataset.map_batches(actor_class, batch_size=1, batch_format="numpy",
                                  compute=ray.data.ActorPoolStrategy(size=options.actors),
                                  num_gpus=options.gpus_per_actor or None)
    try:
        for row in dataset.iter_rows():
            yield int(row["part"]), bytes(row["payload"])
    except UserError:
        raise
    except Exception as err:  # a part failed inside Ray: say what, in one sentence
        raise _user_error(err) from err


def _user_error(err: BaseException) -> UserError:
    """The UserError a task or actor raised (a model that cannot load, ...), else Ray's first line."""
    seen = err
    while seen is not None:
        if isinstance(seen, UserError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return UserError(f"The Ray job failed: {first}")


def actor_class(name: str, make: Callable[[], Callable[[bytes], bytes]]) -> type:
    """A callable class for map_batches whose instances build their worker with `make()` once (the
    model load) and apply it to every part. Defined here, closed over `make`, so that no
    constructor arguments have to travel through the object store."""

    def __init__(self):
        self.work = make()

    def __call__(self, batch):
        return {"part": batch["part"], "payload": [self.work(p) for p in batch["payload"]]}

    return type(name, (), {"__init__": __init__, "__call__": __call__})
