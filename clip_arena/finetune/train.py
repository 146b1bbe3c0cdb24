"""The fine-tuning loop: contrastive loss, AdamW, warmup + cosine schedule, gradient accumulation,
AMP on CUDA, a checkpoint per epoch (the last few and the best kept) and resume, per-epoch
validation recall@k, progress bars. Inputs are checked before the model loads (finetune/plan.py)."""

from __future__ import annotations

import json
import math
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from clip_arena.core.errors import UserError
from clip_arena.finetune import checkpoints
from clip_arena.finetune.data import PairDataset, collate, open_source
from clip_arena.finetune.losses import centre_loss, group_clip_loss, image_group_loss
from clip_arena.finetune.optimizers import check_device, make_optimizer
from clip_arena.finetune.tracking import open_tracker
from clip_arena.finetune.evaluate import text_to_image_recall
from clip_arena.finetune.export import save_local_dir
from clip_arena.finetune.plan import TrainConfig, dropped_note, short_run_warning, warmup_for  # noqa: F401 - TrainConfig: its home for callers
from clip_arena.finetune.scenarios import merge_lora, prepare, trainable
from clip_arena.models.device import pick_device
from clip_arena.models.loaders import demo_inner_spec, open_clip_parts
from clip_arena.models.spec import parse_spec


@dataclass
class TrainResult:
    model_dir: Path | None
    history: list[dict] = field(default_factory=list)
    best_dir: Path | None = None  # the best epoch's model (by validation recall), when it is not the last
    best: dict | None = None  # that epoch's history record
    warnings: list[str] = field(default_factory=list)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.no_grad()
def evaluate(model, dataset: PairDataset, device: str, batch_size: int = 256) -> dict[str, float]:
    model.eval()
    images, texts = [], []
    for pixels, tokens, _ in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        images.append(model.encode_image(pixels.to(device), normalize=True).float().cpu())
        texts.append(model.encode_text(tokens.to(device), normalize=True).float().cpu())
    model.train()
    return text_to_image_recall(torch.cat(texts).numpy(), torch.cat(images).numpy())


@torch.no_grad()
def group_centres(model, dataset: PairDataset, device: str, batch_size: int = 256) -> torch.Tensor:
    """Unit mean image embedding of each group code (0..n-1) of the dataset, under the model as it is."""
    model.eval()
    vecs, codes = [], []
    for pixels, _, groups in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        vecs.append(model.encode_image(pixels.to(device), normalize=True).float())
        codes.append(groups.to(device))
    model.train()
    vecs, codes = torch.cat(vecs), torch.cat(codes)
    n = int(codes.max().item()) + 1 if (codes >= 0).any() else 0
    sums = torch.zeros(n, vecs.shape[1], device=device).index_add_(0, codes[codes >= 0], vecs[codes >= 0])
    return torch.nn.functional.normalize(sums, dim=-1)


def _checkpoint_state(model, optimizer, scheduler, scaler, epoch, step, history, cfg, init_spec):
    return {"epoch": epoch, "step": step, "history": history, "config": asdict(cfg), "init_spec": init_spec,
            "trainable": {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad},
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler else None,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}}


def finetune(data, init_spec: str, output_dir: str | Path, cfg: TrainConfig,
             resume: bool = False, device: str | None = None, progress: bool = True) -> TrainResult:
    """Train, checkpoint each epoch, and save the final (LoRA-merged) model to OUTPUT/model. `data`: a
    catalog path or shards.Shards (or either, opened by data.open_source)."""
    from open_clip import ClipLoss
    from tqdm import tqdm

    # Everything that needs no model is checked first: a mistake costs a second, not a model load.
    source = open_source(data, cfg)
    spec = parse_spec(init_spec)
    if spec.backend == "demo":
        spec = demo_inner_spec(spec)
    if spec.backend != "open_clip":
        raise UserError(f"Fine-tuning takes open_clip models; {init_spec} is a {spec.backend} model.")
    output_dir = Path(output_dir)
    ckpt_dir = output_dir / "checkpoints"
    latest = checkpoints.latest(ckpt_dir) if resume else None
    state = torch.load(latest, map_location="cpu", weights_only=False) if latest is not None else None
    if state is not None and (state["config"]["scenario"] != cfg.scenario or state["init_spec"] != init_spec):
        raise UserError(f"{latest} was made by another run (scenario {state['config']['scenario']}, "
                        f"model {state['init_spec']}); resume needs the same.")
    device = pick_device(device)
    check_device(cfg.optimizer, device)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    _seed(cfg.seed)
    parts = open_clip_parts(spec, device, "fp32")
    model = prepare(parts["model"], cfg.scenario, rank=cfg.lora_rank).to(device)
    if cfg.freeze_text:  # the plain-name text embeddings stay where they are: name recall keeps its anchor
        for name, p in model.named_parameters():
            if not name.startswith("visual."):
                p.requires_grad_(False)
    train_set = source.train_pairs(parts["train_transform"], parts["tokenizer"], cfg.positives)
    val_set = source.val_pairs(parts["transform"], parts["tokenizer"])
    history: list[dict] = []
    if cfg.scenario == "zero_shot":
        history.append({"epoch": 0, **(evaluate(model, val_set, device) if val_set else {})})
        return TrainResult(save_local_dir(model, parts["model_cfg"], output_dir / "model"), history)

    centres = None
    if cfg.positives and cfg.centre_loss_weight:  # fixed for the run, from the model we start from
        centres = group_centres(model, source.train_pairs(parts["transform"], parts["tokenizer"], cfg.positives,
                                                          shuffle=False), device)
    generator = torch.Generator().manual_seed(cfg.seed)
    loader, sampler = source.loader(train_set, cfg, generator)  # sampler: whose `epoch` a resumed run sets
    steps_per_epoch = math.ceil(len(loader) / cfg.accum_steps)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = warmup_for(total_steps, cfg.warmup_steps, cfg.warmup_ratio)
    run_steps = min(total_steps, cfg.max_steps) if cfg.max_steps is not None else total_steps
    warnings = [w for w in [short_run_warning(source.n_train, cfg.batch_size, cfg.accum_steps, cfg.epochs,
                                              steps_per_epoch, run_steps, warmup),
                                            dropped_note(source.n_train, cfg.batch_size, cfg.batch_groups)] if w]
    for line in warnings:
        print(line, file=sys.stderr, flush=True)
    optimizer = make_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, device)
    scheduler = _schedule(optimizer, warmup, total_steps)
    clip_loss = ClipLoss()
    amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda") if amp else None
    start_epoch, step = 1, 0

    if state is not None:
        params = dict(model.named_parameters())
        for name, value in state["trainable"].items():
            params[name].data.copy_(value.to(device))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        start_epoch, step, history = state["epoch"] + 1, state["step"], state["history"]
        generator.manual_seed(cfg.seed + state["epoch"])
        if sampler is not None:
            sampler.epoch = state["epoch"]
        del state

    tracker = open_tracker(cfg.track, cfg.track_project, output_dir.resolve().name,
                           {**asdict(cfg), "init_spec": init_spec, "train_samples": source.n_train}, resume=resume)
    trained = trainable(model)

    def optimiser_step(step_losses: list[float]) -> None:
        nonlocal step
        grad_norm = None
        if tracker.active:  # the norm of the step's (unscaled) gradients; it costs a sync, so only when tracked
            if scaler:
                scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in trained if p.grad is not None]).item()
        lr = scheduler.get_last_lr()[0]  # the rate this step is taken with
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        step += 1
        with torch.no_grad():  # as in CLIP: the temperature stays below 100
            model.logit_scale.clamp_(0, math.log(100))
        tracker.log({"train/loss": float(np.mean(step_losses)), "train/lr": lr, "train/grad_norm": grad_norm}, step)

    model.train()
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            losses, pending = [], 0  # pending: micro-batches whose gradients wait for the next step
            bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
                       dynamic_ncols=True)
            optimizer.zero_grad(set_to_none=True)
            for pixels, tokens, groups in bar:
                with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                    image = model.encode_image(pixels.to(device), normalize=True)
                    text = model.encode_text(tokens.to(device), normalize=True)
                    scale = model.logit_scale.exp()
                    if cfg.positives:
                        groups = groups.to(device)
                        loss = group_clip_loss(image, text, scale, groups, cfg.positive_weight)
                        if cfg.image_loss_weight:
                            loss = loss + cfg.image_loss_weight * image_group_loss(image, groups, scale)
                        if centres is not None:
                            loss = loss + cfg.centre_loss_weight * centre_loss(image, groups, centres,
                                                                               cfg.centre_scale)
                    else:
                        loss = clip_loss(image, text, scale)
                    loss = loss / cfg.accum_steps
                (scaler.scale(loss) if scaler else loss).backward()
                losses.append(loss.item() * cfg.accum_steps)
                pending += 1
                if pending == cfg.accum_steps:
                    optimiser_step(losses[-pending:])
                    pending = 0
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
                if cfg.max_steps is not None and step >= cfg.max_steps:
                    break
            if pending:  # the epoch's last micro-batches, fewer than --accum-steps: one step of their own
                optimiser_step(losses[-pending:])
            record = {"epoch": epoch, "step": step, "train_loss": float(np.mean(losses)),
                      "lr": scheduler.get_last_lr()[0]}
            if val_set is not None:
                record.update(evaluate(model, val_set, device))
            history.append(record)
            tracker.log({"epoch": epoch, "train/epoch_loss": record["train_loss"],
                         **{f"val/{k}": v for k, v in record.items() if k.startswith("recall@")}}, step)
            torch.save(_checkpoint_state(model, optimizer, scheduler, scaler, epoch, step, history, cfg, init_spec),
                       checkpoints.epoch_path(ckpt_dir, epoch))
            checkpoints.prune(ckpt_dir, history, cfg.keep_checkpoints)
            if progress:
                print(json.dumps(record), flush=True)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
    finally:
        tracker.finish()

    best = checkpoints.best_record(history)
    best_dir = None
    if best is not None and best["epoch"] != history[-1]["epoch"]:
        best_dir = _save_best(model, checkpoints.epoch_path(ckpt_dir, best["epoch"]), parts["model_cfg"],
                              output_dir / "model_best", device)
    final = merge_lora(model).eval()
    model_dir = save_local_dir(final, parts["model_cfg"], output_dir / "model")
    (output_dir / "history.json").write_text(json.dumps(history, indent=2))
    return TrainResult(model_dir, history, best_dir, best, warnings)


def _save_best(model, checkpoint: Path, model_cfg: dict, folder: Path, device: str) -> Path:
    """The best epoch's weights (its checkpoint's trainable tensors on a copy of the model) as a model folder."""
    import copy

    trained = torch.load(checkpoint, map_location="cpu", weights_only=False)["trainable"]
    best = copy.deepcopy(model)
    params = dict(best.named_parameters())
    for name, value in trained.items():
        params[name].data.copy_(value.to(device))
    return save_local_dir(merge_lora(best).eval(), model_cfg, folder)
