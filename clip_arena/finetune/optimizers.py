"""The optimiser of a fine-tune: AdamW, or bitsandbytes' 8-bit AdamW (its moment estimates in 8 bits:
a quarter of AdamW's optimiser memory, for large models on one GPU; its kernels run on CUDA only)."""

from __future__ import annotations

import torch

from clip_arena.core.errors import UserError


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            # open_clip's rule: no weight decay on gains, biases, embeddings and the temperature
            (no_decay if p.ndim < 2 or "bias" in name or "ln" in name or "logit_scale" in name
             or "embedding" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def check_device(name: str, device: str) -> None:
    """Before the model loads: adamw8bit on anything but CUDA is one sentence, not a kernel error."""
    if name == "adamw8bit" and not device.startswith("cuda"):
        raise UserError(f"--optimizer adamw8bit runs on CUDA GPUs only (bitsandbytes' 8-bit kernels) and this run "
                        f"is on {device}; use --optimizer adamw.")


def make_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float, device: str):
    check_device(name, device)
    groups = param_groups(model, weight_decay)
    if name == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr)
