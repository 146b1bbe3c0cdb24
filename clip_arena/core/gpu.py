"""`@gpu` around work that may use a GPU: on a ZeroGPU Space it is the `spaces` package's
`spaces.GPU` (a GPU is attached for the call); where that package is absent it does nothing."""

from __future__ import annotations

from typing import Callable


def gpu(fn: Callable) -> Callable:
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn)
