"""Which parameters each scenario trains. LoRA adapters come from peft, on the MLP linears of each
residual block (open_clip's attention is nn.MultiheadAttention, whose out_proj weight is read
directly by the fused kernel, so an adapter there would never run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clip_arena.core.errors import UserError

if TYPE_CHECKING:  # only in annotations: `clip-arena finetune --help` lists SCENARIOS without torch
    import torch

SCENARIOS = ("zero_shot", "linear_probe", "dual_lora", "vision_lora", "text_lora", "full")
_MLP = r"resblocks\.\d+\.mlp\.(c_fc|c_proj)"
LORA_TARGETS = {
    "dual_lora": rf"(visual\.transformer\.{_MLP}|transformer\.{_MLP})",
    "vision_lora": rf"visual\.transformer\.{_MLP}",
    "text_lora": rf"transformer\.{_MLP}",
}
PROJECTIONS = ("visual.proj", "text_projection", "logit_scale")


def prepare(model: torch.nn.Module, scenario: str, rank: int = 8, alpha: int = 16) -> torch.nn.Module:
    """Freeze what the scenario keeps fixed; wrap with LoRA adapters where it adapts."""
    if scenario not in SCENARIOS:
        raise UserError(f"Unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}.")
    if scenario == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    for name, p in model.named_parameters():
        p.requires_grad_(scenario == "linear_probe" and name in PROJECTIONS)
    if scenario in LORA_TARGETS:
        from peft import LoraConfig, inject_adapter_in_model

        target = LORA_TARGETS[scenario]
        if scenario == "text_lora":  # the text tower's blocks, not the vision tower's
            target = rf"^(?!visual\.){target}"
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=target)
        model = inject_adapter_in_model(config, model)
        model.logit_scale.requires_grad_(True)
    return model


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every LoRA adapter into its base weight so the result is a plain open_clip model."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.get_base_layer())
    return model


def trainable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
