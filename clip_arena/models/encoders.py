"""Encoders: one model, one device, one precision; batches in, L2-normalised float32 out.

Every backend exposes the same small surface so the tabs, the batch scorer and the
embedding builder never care which library produced a vector:
  - image_transform(pil) -> float tensor (picklable, so DataLoader workers can run it)
  - encode_pixels(tensor batch) -> np.ndarray (float input, or uint8 from `fast_transform`)
  - fast_transform(pil) -> uint8 tensor when the preprocessing is the CLIP recipe (models.pixels),
    normalised on the device by encode_pixels; else the float image_transform
  - encode_images(pil list) / encode_texts(str list) -> np.ndarray
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from clip_arena.models.device import PRECISIONS
from clip_arena.models.pixels import Preprocess, preprocess_of


def _normalise(features: torch.Tensor) -> np.ndarray:
    # Normalise in float32: fp16 norms of 512-d vectors lose visible precision.
    features = features.float()
    features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return features.cpu().numpy().astype(np.float32, copy=False)


class Encoder:
    """Base class; subclasses set the model, the transform and the two feature hooks."""

    spec: str
    device: str
    precision: str
    dim: int
    context_length: int
    image_transform: Callable[[Image.Image], torch.Tensor]

    @property
    def dtype(self) -> torch.dtype:
        return PRECISIONS[self.precision]

    @property
    def preprocess(self) -> Preprocess | None:
        if not hasattr(self, "_preprocess"):
            self._preprocess = preprocess_of(self)
        return self._preprocess

    @property
    def fast_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """What decoding workers should run: uint8 pixels when the device can normalise them."""
        return self.preprocess or self.image_transform

    # -- hooks -------------------------------------------------------------
    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    # -- public API --------------------------------------------------------
    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """A batch of the image transform's output, or of fast_transform's uint8 pixels (scaled and
        normalised here, on the device, after a 4x smaller copy)."""
        if pixels.dtype == torch.uint8:
            return self.encode_raw(pixels.to(self.device, non_blocking=True))
        pixels = pixels.to(self.device, dtype=self.dtype, non_blocking=True)
        return _normalise(self._image_features(pixels))

    @torch.inference_mode()
    def encode_raw(self, pixels: torch.Tensor) -> np.ndarray:
        """(N, 3, S, S) pixels in 0..255, float or uint8, already on any device (the GPU decoder's
        output): normalised and encoded."""
        if self.preprocess is None:
            raise ValueError(f"{self.spec} takes float pixels from its image_transform, not raw pixels.")
        return _normalise(self._image_features(self.preprocess.normalise(pixels.to(self.device), self.dtype)))

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        out = [np.empty((0, self.dim), np.float32)]
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            pixels = torch.stack([self.image_transform(im) for im in chunk])
            out.append(self.encode_pixels(pixels))
        return np.concatenate(out)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        out = [np.empty((0, self.dim), np.float32)]
        for start in range(0, len(texts), batch_size):
            chunk = [str(t) for t in texts[start : start + batch_size]]
            out.append(_normalise(self._text_features(chunk)))
        return np.concatenate(out)


class OpenClipEncoder(Encoder):
    def __init__(self, spec, model, transform, tokenizer, device, precision):
        self.spec, self.model, self.image_transform = spec, model.eval(), transform
        self.tokenizer, self.device, self.precision = tokenizer, device, precision
        self.context_length = int(getattr(tokenizer, "context_length", 77))
        self.dim = int(self._probe_dim())

    def _probe_dim(self) -> int:
        proj = getattr(self.model, "text_projection", None)
        if isinstance(proj, torch.Tensor):
            return proj.shape[-1]
        return self.encode_texts(["probe"]).shape[1]

    def _image_features(self, pixels):
        return self.model.encode_image(pixels)

    def _text_features(self, texts):
        # open_clip tokenizers truncate to context_length themselves (never an error).
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens)


class HFClipEncoder(Encoder):
    """transformers models with get_image_features/get_text_features (CLIP, SigLIP, ...)."""

    def __init__(self, spec, model, processor, device, precision):
        self.spec, self.model, self.processor = spec, model.eval(), processor
        self.device, self.precision = device, precision
        config = getattr(model.config, "text_config", model.config)
        self.context_length = int(getattr(config, "max_position_embeddings", 77))
        self.image_transform = _HFImageTransform(processor.image_processor)
        self.dim = int(getattr(model.config, "projection_dim", 0) or self.encode_texts(["probe"]).shape[1])

    @staticmethod
    def _tensor(output) -> torch.Tensor:
        # transformers 5 returns a model output whose pooler_output holds the projection.
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    def _image_features(self, pixels):
        return self._tensor(self.model.get_image_features(pixel_values=pixels))

    def _text_features(self, texts):
        tokens = self.processor.tokenizer(
            texts, padding=True, truncation=True, max_length=self.context_length, return_tensors="pt"
        ).to(self.device)
        return self._tensor(self.model.get_text_features(**tokens))


class _HFImageTransform:
    """Picklable one-image wrapper around an HF image processor."""

    def __init__(self, image_processor):
        self.image_processor = image_processor

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]
