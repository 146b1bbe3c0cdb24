"""Work that yields the processor to annotators: model jobs (Similarity, Analyze, Batch CSV) and
password checks run in threads at a lower scheduling priority (nice 10 on Linux), so on a small
shared machine the thread answering a vote gets a core first. Threads are lowered once, when they
start, and never raised back (raising needs a privilege a Space does not have); the threads they
start (a batch's fetch workers) inherit it.
"""

from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

NICE = 10
_pools: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at the usual priority
        pass


def pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The named pool of low-priority threads (made once)."""
    with _lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"low-{name}",
                                              initializer=_lower_priority)
        return _pools[name]


def submit(name: str, workers: int, fn, *args, **kwargs) -> Future:
    """`fn(*args, **kwargs)` on the named low-priority pool, in the caller's context (Gradio's
    progress bar and request live in context variables)."""
    context = contextvars.copy_context()
    return pool(name, workers).submit(context.run, fn, *args, **kwargs)


def run(name: str, workers: int, fn, *args, **kwargs):
    """submit(), then wait for the result (the caller's thread waits without holding the GIL)."""
    return submit(name, workers, fn, *args, **kwargs).result()
