"""--decode's choices, without torch: `clip-arena embed --help` lists them before any model loads."""

from __future__ import annotations

from clip_arena.core.errors import UserError

# Where JPEGs are decoded (index.embed.Decoding, analyzer.batch.batch_transform): "gpu" is nvJPEG on
# the model's device, the default there; "cpu" is the decoding workers.
DECODE_CHOICES = ("auto", "cpu", "gpu")


def decode_mode(decode: str, on_cuda: bool) -> str:
    """--decode resolved: "gpu" or "cpu" ("auto" is "gpu" where the models run on CUDA)."""
    if decode not in DECODE_CHOICES:
        raise UserError(f"--decode must be one of {', '.join(DECODE_CHOICES)}, not {decode!r}.")
    return ("gpu" if on_cuda else "cpu") if decode == "auto" else decode
