"""Values computed once per encoder (its reference captions' embeddings, its label prompts, its
width), held weakly: such a cache never keeps a model in memory after the models file dropped it
(models.live swaps models while the app runs; an lru_cache would hold up to maxsize encoders)."""

from __future__ import annotations

import functools
import threading
import weakref
from typing import Callable, TypeVar

T = TypeVar("T")


def per_encoder(compute: Callable[[object], T]) -> Callable[[object], T]:
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    @functools.wraps(compute)
    def cached(encoder) -> T:
        with lock:
            if encoder in cache:
                return cache[encoder]
        value = compute(encoder)  # outside the lock: two encoders are computed at once
        with lock:
            return cache.setdefault(encoder, value)

    cached.cache_clear = cache.clear  # type: ignore[attr-defined]
    return cached
