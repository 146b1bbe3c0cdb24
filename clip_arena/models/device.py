"""Device and precision chosen by themselves: CUDA with fp16, else MPS, else CPU (fp32)."""

from __future__ import annotations

import torch

from clip_arena.core.errors import ModelLoadError

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def on_cuda(device) -> bool:
    """Whether a device (a string or torch.device) is a CUDA one."""
    return str(device).startswith("cuda")


def pick_device(requested: str | None = None) -> str:
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"Device {requested!r} was asked for but CUDA is not available here.")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_precision(device: str, requested: str | None = None) -> str:
    if requested:
        if requested not in PRECISIONS:
            raise ModelLoadError(f"Precision {requested!r} is not one of {', '.join(PRECISIONS)}.")
        if requested != "fp32" and device == "cpu":
            return "fp32"  # half precision on CPU is slow and loses accuracy for nothing
        return requested
    return "fp16" if device.startswith("cuda") else "fp32"
