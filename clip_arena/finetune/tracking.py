"""Experiment tracking for a fine-tune: `--track trackio` (local-first, W&B's API, its own dashboard:
`trackio show`), `--track wandb` (when installed; WANDB_MODE=offline is honoured by wandb itself) or
none. The trainer logs loss, learning rate and gradient norm per optimiser step and validation recall
per epoch; a tracker's own chatter goes to stderr, so stdout keeps one JSON record per epoch."""

from __future__ import annotations

import contextlib
import importlib
import sys


class Tracker:
    """No tracking: the calls cost nothing and the trainer skips the gradient norm."""

    active = False

    def log(self, metrics: dict, step: int) -> None:
        pass

    def finish(self) -> None:
        pass


class ModuleTracker(Tracker):
    """trackio and wandb share init(project, name, config) / log(metrics, step) / finish()."""

    active = True

    def __init__(self, module, project: str, name: str, config: dict, resume: bool):
        self.module = module
        extra = {"resume": "allow"} if resume else {}
        with contextlib.redirect_stdout(sys.stderr):
            self.run = module.init(project=project, name=name, config=config, **extra)

    def log(self, metrics: dict, step: int) -> None:
        self.module.log(metrics, step=step)

    def finish(self) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            self.module.finish()


def load_module(kind: str):
    return importlib.import_module(kind)  # trackio or wandb; plan.check_packages found it before the model loaded


def open_tracker(kind: str, project: str, name: str, config: dict, resume: bool = False) -> Tracker:
    if kind == "none":
        return Tracker()
    return ModuleTracker(load_module(kind), project, name, config, resume)
