"""Fine-tuning with the catalog's groups: multi-positive losses and batches drawn from one group."""

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from open_clip import ClipLoss

from clip_arena.finetune.losses import group_clip_loss, image_group_loss
from clip_arena.finetune.sampling import GroupBatchSampler, group_batches


@given(st.lists(st.integers(0, 6), min_size=1, max_size=80), st.integers(1, 20), st.integers(0, 2**16))
@settings(max_examples=60, deadline=None)
def test_group_batches_cover_every_row_once_and_split_groups_as_little_as_possible(groups, size, seed):
    batches = group_batches(groups, size, np.random.default_rng(seed))
    rows = sorted(r for b in batches for r in b)
    assert rows == list(range(len(groups)))
    assert all(1 <= len(b) <= size for b in batches)
    mixed = sum(len({groups[r] for r in b}) - 1 for b in batches)
    assert mixed <= len(set(groups)) - 1  # groups laid end to end: each boundary mixes one batch


def test_sampler_draws_a_new_arrangement_each_epoch_and_repeats_with_the_seed():
    groups = [i % 5 for i in range(100)]
    a, b = GroupBatchSampler(groups, 16, seed=3), GroupBatchSampler(groups, 16, seed=3)
    first, second = list(a), list(a)
    assert first != second and first == list(b) and len(a) == len(first) == 7


def normed(x):
    return F.normalize(x, dim=-1)


def test_group_loss_is_clips_loss_when_every_pair_is_its_own_group():
    torch.manual_seed(0)
    image, text = normed(torch.randn(8, 16)), normed(torch.randn(8, 16))
    scale = torch.tensor(20.0)
    ours = group_clip_loss(image, text, scale, torch.arange(8))
    assert torch.allclose(ours, ClipLoss()(image, text, scale), atol=1e-5)


def test_group_loss_does_not_push_apart_captions_of_the_same_group():
    torch.manual_seed(0)
    text = normed(torch.randn(6, 16))
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    scale = torch.tensor(20.0)
    # every image matched to its group's first caption: plain CLIP calls that wrong, the group loss
    # calls it better than images matched to the other group's first caption
    mean_of_group = normed(text[[0, 0, 0, 3, 3, 3]])
    crossed = normed(text[[3, 3, 3, 0, 0, 0]])
    assert group_clip_loss(mean_of_group, text, scale, groups) < group_clip_loss(crossed, text, scale, groups)


def test_image_group_loss_rewards_images_that_cluster_by_group():
    torch.manual_seed(0)
    centres = normed(torch.randn(3, 16))
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    clustered = normed(centres[groups] + 0.05 * torch.randn(6, 16))
    scattered = normed(torch.randn(6, 16))
    scale = torch.tensor(10.0)
    assert image_group_loss(clustered, groups, scale) < image_group_loss(scattered, groups, scale)
    alone = image_group_loss(scattered, torch.arange(6), scale)  # no positives at all: no loss, no NaN
    assert alone.item() == 0.0


from test_finetune import tiny_catalog  # noqa: E402,F401 - the fixture


def test_finetune_with_groups_trains_saves_and_resumes(tiny_catalog, tmp_path):  # noqa: F811
    import pytest

    from clip_arena.core.errors import UserError
    from clip_arena.finetune.train import TrainConfig, finetune
    from clip_arena.models import get_encoder

    catalog, init = tiny_catalog
    cfg = TrainConfig(scenario="full", epochs=2, batch_size=3, lr=1e-3, warmup_steps=1, seed=0,
                      positives="category", batch_groups="category", image_loss_weight=1.0)
    first = finetune(catalog, init, tmp_path / "run", cfg, progress=False)
    assert [h["step"] for h in first.history] == [2, 4] and all(np.isfinite(h["train_loss"]) for h in first.history)
    resumed = finetune(catalog, init, tmp_path / "run", TrainConfig(**{**cfg.__dict__, "epochs": 3}), resume=True,
                       progress=False)
    assert resumed.history[:2] == first.history and len(resumed.history) == 3
    assert get_encoder(f"open_clip:local-dir:{resumed.model_dir}").encode_texts(["a red square"]).shape == (1, 32)
    with pytest.raises(UserError, match="no column 'colour'"):
        finetune(catalog, init, tmp_path / "bad", TrainConfig(scenario="full", positives="colour"), progress=False)


def test_centre_loss_rewards_images_at_their_own_groups_centre():
    from clip_arena.finetune.losses import centre_loss

    torch.manual_seed(0)
    centres = normed(torch.randn(3, 16))
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    at_own = normed(centres[groups] + 0.05 * torch.randn(6, 16))
    at_other = normed(centres[(groups + 1) % 3] + 0.05 * torch.randn(6, 16))
    assert centre_loss(at_own, groups, centres, 30.0) < 0.01 < 5 < centre_loss(at_other, groups, centres, 30.0)
    # rows without a group are left out; none at all is no loss and no NaN
    assert torch.allclose(centre_loss(torch.cat([at_own, at_other[:1]]), torch.cat([groups, torch.tensor([-7])]),
                                      centres, 30.0), centre_loss(at_own, groups, centres, 30.0))
    assert centre_loss(at_other, torch.full((6,), -1), centres, 30.0).item() == 0.0


def _group_margin(model_dir, catalog_path) -> float:
    """Mean cosine of train images of one category minus that of images of different categories."""
    from PIL import Image

    from clip_arena.index.catalog import read_catalog
    from clip_arena.models import get_encoder

    cat = read_catalog(catalog_path, require_embeddings=False)
    frame = cat.frame()
    train = frame[frame["split"] == "train"]
    vecs = get_encoder(f"open_clip:local-dir:{model_dir}").encode_images(
        [Image.open(cat.resolve_uri(u)).convert("RGB") for u in train["image_uri"]])
    same = train["category"].to_numpy()[:, None] == train["category"].to_numpy()[None, :]
    other = ~same
    np.fill_diagonal(same, False)
    sims = vecs @ vecs.T
    return float(sims[same].mean() - sims[other].mean())


def test_centre_loss_with_a_frozen_text_tower_clusters_images_and_keeps_the_text_tower(tiny_catalog, tmp_path):  # noqa: F811
    from safetensors.torch import load_file

    from clip_arena.finetune.train import TrainConfig, finetune

    catalog, init = tiny_catalog
    start = finetune(catalog, init, tmp_path / "zero", TrainConfig(scenario="zero_shot"), progress=False)
    cfg = TrainConfig(scenario="full", epochs=6, batch_size=3, lr=2e-3, warmup_steps=1, seed=0, positives="category",
                      positive_weight=1.0, centre_loss_weight=1.0, freeze_text=True)
    tuned = finetune(catalog, init, tmp_path / "run", cfg, progress=False)
    before = load_file(str(start.model_dir / "open_clip_model.safetensors"))
    after = load_file(str(tuned.model_dir / "open_clip_model.safetensors"))
    text = [k for k in before if not k.startswith("visual.")]
    assert text and all(torch.equal(before[k], after[k]) for k in text)  # text tower and temperature untouched
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("visual."))
    # the same run without the centre term: captions alone separate the colours far less by category
    plain = finetune(catalog, init, tmp_path / "plain", TrainConfig(**{**cfg.__dict__, "centre_loss_weight": 0.0}),
                     progress=False)
    margins = [_group_margin(r.model_dir, catalog) for r in (start, plain, tuned)]
    assert margins[2] > margins[1] + 0.1 and margins[2] > margins[0] + 0.2, margins
