"""CLIP Arena: a blind A/B arena, statistics and analysis tools for CLIP-style image-text models.

Installed, every package lives under this one name. In a checkout the design card's packages
(arena/, analyzer/, index/, votes/) and assets/ sit at the repository's top, beside this folder:
the package's search path takes that top in, so `clip_arena.arena` is the same module either way
and nothing generic is ever imported as a top-level name.
"""

from pathlib import Path as _Path

_TOP = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "arena").is_dir() and (_TOP / "arena" / "__init__.py").is_file():
    __path__.append(str(_TOP))  # noqa: F821 - a package's __path__ is defined by the import system
