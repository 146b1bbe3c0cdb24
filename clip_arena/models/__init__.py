"""The encoder registry: one string names a model, loaded lazily and cached.

    from clip_arena.models import get_encoder
    enc = get_encoder("open_clip:ViT-B-32@openai")
    enc.encode_images([pil_image]); enc.encode_texts(["a red shoe"])
"""

# The registry imports torch (seconds): it loads on first use, so that the torch-free modules of this
# package (spec, decode) stay cheap for `clip-arena --help` and argument parsing.
_REGISTRY = ("get_encoder", "known_specs", "parse_spec")


def __getattr__(name: str):
    if name in _REGISTRY:
        from clip_arena.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
