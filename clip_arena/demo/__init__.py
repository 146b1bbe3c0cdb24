"""The bundled demo: Unicode emoji rendered to images, tiny models trained on them, one catalog.

Regenerate everything with `make demo` (python -m clip_arena.demo.build)."""
