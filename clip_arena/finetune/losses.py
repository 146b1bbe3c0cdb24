"""Contrastive losses for fine-tuning.

CLIP's own loss (open_clip's ClipLoss) gives each image one positive, its own caption.
`group_clip_loss` is the multi-positive form used when a catalog's metadata says which pairs belong together (supervised
contrastive learning, Khosla et al. 2020; UniCL, Yang et al. 2022): every caption of the image's
group is a positive, sharing the target mass, so images of one group are not pushed apart."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def group_clip_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, groups: torch.Tensor,
                    own_weight: float = 0.5) -> torch.Tensor:
    """Soft targets: `own_weight` on the pair's own caption, the rest spread over the other pairs of
    its group (all of it on its own caption when it is alone in the batch)."""
    same = (groups[:, None] == groups[None, :]).float()
    eye = torch.eye(len(image), device=image.device)
    others = same - eye
    count = others.sum(dim=1, keepdim=True)
    target = torch.where(count > 0, own_weight * eye + (1 - own_weight) * others / count.clamp(min=1), eye)
    logits = scale * image @ text.T
    return (torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
            + torch.sum(-target * F.log_softmax(logits.T, dim=1), dim=1).mean()) / 2


def image_group_loss(image: torch.Tensor, groups: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Supervised contrastive loss among the batch's images: for each image with another of its
    group in the batch, those are its positives and every other image a negative."""
    n = len(image)
    eye = torch.eye(n, dtype=torch.bool, device=image.device)
    positives = (groups[:, None] == groups[None, :]) & ~eye
    anchors = positives.any(dim=1)
    if not anchors.any():
        return image.sum() * 0.0
    logits = (scale * image @ image.T).masked_fill(eye, float("-inf"))
    log_prob = F.log_softmax(logits, dim=1).masked_fill(eye, 0.0)
    per_anchor = (log_prob * positives).sum(dim=1) / positives.sum(dim=1).clamp(min=1)
    return -per_anchor[anchors].mean()


def centre_loss(image: torch.Tensor, groups: torch.Tensor, centres: torch.Tensor, scale: float) -> torch.Tensor:
    """Cross-entropy of each image against fixed group centres (unit vectors, one row per group code):
    it pulls an image towards its own group's centre and away from the others, which clusters the
    embedding itself. (Learned centres would fit a linear classifier and leave neighbours unchanged.)
    Rows without a group (negative codes) are left out."""
    known = groups >= 0
    if not known.any():
        return image.sum() * 0.0
    return F.cross_entropy(scale * image[known] @ centres.T, groups[known])
