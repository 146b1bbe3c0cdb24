"""The encoder registry: one string names a model, loaded lazily and cached.

    from clip_arena.models import get_encoder
    enc = get_encoder("open_clip:ViT-B-32@openai")
    enc.encode_images([pil_image]); enc.encode_texts(["a red shoe"])
"""

from clip_arena.models.registry import get_encoder, known_specs, parse_spec  # noqa: F401
