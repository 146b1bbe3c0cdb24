"""Image properties (offline, numpy + OpenCV): brightness, contrast, sharpness, colourfulness,
dominant colours with names and pixel shares, size and aspect ratio."""

from __future__ import annotations

import numpy as np

from clip_arena.analyzer.content.colours import dominant_colours
from clip_arena.analyzer.content.component import Backend, Component, Context

SHARPNESS_SIDE = 1024  # images are measured at this longest side so sizes stay comparable


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma in 0..1."""
    return (rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])) / 255.0


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003), 'Measuring colourfulness in natural images', eq. (3) on 0..255
    RGB: rg = R - G, yb = (R + G) / 2 - B, M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2).
    About 0 for greys, 33 'moderately', 59 'quite', above 82 'extremely' colourful."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image, resized to SHARPNESS_SIDE on its longest side."""
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = SHARPNESS_SIDE / max(grey.shape)
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def measure(ctx: Context) -> dict:
    rgb = ctx.rgb
    height, width = rgb.shape[:2]
    y = luma(rgb)
    aspect = width / height
    return {
        "width": width,
        "height": height,
        "aspect_ratio": round(aspect, 4),
        "orientation": "square" if abs(aspect - 1) < 0.02 else ("landscape" if aspect > 1 else "portrait"),
        "brightness": round(float(y.mean()), 4),
        "contrast": round(float(y.std()), 4),
        "sharpness": round(sharpness(rgb), 2),
        "colourfulness": round(colourfulness(rgb), 2),
        "dominant_colours": dominant_colours(rgb),
    }


def component() -> Component:
    return Component(
        name="image_properties",
        needs_image=True,
        backends=(Backend("numpy+opencv", measure, modules=("cv2", "sklearn", "webcolors")),),
    )
