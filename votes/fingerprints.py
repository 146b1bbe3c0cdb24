"""Which catalog a vote was cast on. Each vote carries `catalog_fingerprint`, "method:hash-method:hash"
(arena/session.py: the first 12 hex digits of each method's embeddings' blake2b). Two votes clash
when one method name stands for different embeddings in them: a different catalog, or the method
re-embedded. A third method added to a catalog is no clash: the pair's embeddings are the same."""

from __future__ import annotations

import re
from functools import lru_cache
from collections import Counter, defaultdict
from collections.abc import Iterable


_PART = re.compile(r"([A-Za-z0-9_]+):([0-9a-f]+)")
HASH_DIGITS = 12


def of_catalog(catalog, methods: Iterable[str] | None = None) -> str:
    """The fingerprint the arena writes on votes cast over this catalog."""
    from clip_arena.index.vector_index import fingerprint as vectors_fingerprint  # FAISS: only here

    names = sorted(methods if methods is not None else catalog.methods)
    return "-".join(f"{m}:{vectors_fingerprint(catalog.embeddings(m))[:HASH_DIGITS]}" for m in names)


def methods_of(fp: str) -> dict[str, str]:
    """{method: hash}; a fingerprint of another form is one opaque entry under the name ''."""
    parts = (fp or "").split("-")
    found = [_PART.fullmatch(p) for p in parts]
    if fp and all(found):
        return {m.group(1): m.group(2) for m in found}
    return {"": fp or ""}


def clashes(fingerprints: Iterable[str]) -> dict[str, set[str]]:
    """{method: its different hashes} for each method named with more than one hash."""
    hashes: dict[str, set[str]] = defaultdict(set)
    for fp in set(fingerprints):
        for method, digest in methods_of(fp).items():
            hashes[method].add(digest)
    return {m: h for m, h in sorted(hashes.items()) if len(h) > 1}


@lru_cache(maxsize=4096)  # a store's votes carry a handful of fingerprints, checked once per vote
def compatible(fp: str, reference: str) -> bool:
    """True when no method has a different hash in `fp` than in `reference`."""
    ref = methods_of(reference)
    return all(ref.get(m, h) == h for m, h in methods_of(fp).items())


def describe(votes: list[dict]) -> str | None:
    """One sentence naming the clashes among these votes (None when there is none)."""
    found = clashes(v.get("catalog_fingerprint", "") for v in votes)
    if not found:
        return None
    counts = Counter(v.get("catalog_fingerprint", "") for v in votes)
    method, digests = next(iter(found.items()))
    per = defaultdict(int)
    for fp, n in counts.items():
        per[methods_of(fp).get(method)] += n
    named = f"method {method}" if method else "the catalog"
    sizes = ", ".join(f"{per[d]} with {d[:HASH_DIGITS] or '(none)'}" for d in sorted(digests, key=lambda d: -per[d]))
    others = f" (and {len(found) - 1} more method{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
    return (f"these votes come from {len(digests)} different embeddings of {named}{others}: {sizes}")
