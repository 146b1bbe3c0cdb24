"""The attributes stage's offline tier: zero-shot classification of each image with the catalog's CLIP
model against attribute vocabularies ({style: [...], material: [...], ...} from a YAML file).

Per attribute A each row gets `A` (the value, or "unknown" when the model is not sure enough, so that a
low-confidence guess never becomes training text), `A_confidence` (the value's probability: softmax
over the vocabulary at the model's own logit scale) and `A_margin` (top-1 minus top-2 probability).
The VLM tier (clip_arena.prepare.vlm) fills the same columns; `attributes_tier` names the tier."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from clip_arena.core.errors import UserError
from clip_arena.core.settings import ASSETS_DIR

DEFAULT_VOCABULARY = ASSETS_DIR / "prepare" / "vocabulary.yaml"
UNKNOWN = "unknown"
TIER_COLUMN = "attributes_tier"
DEFAULT_MIN_CONFIDENCE = 0.3
MAX_ATTRIBUTES, MAX_VALUES, MAX_VALUE_CHARS = 32, 1000, 100
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Columns the catalog already gives a meaning; an attribute cannot take their names.
RESERVED = {"templates", "image_id", "image_uri", "caption", "split", "mini_train", "clean_title", "title", "category",
            "source_uri", "duplicate_of", "duplicate_kind", "sha256", "phash", "width", "height", TIER_COLUMN}
# How each known attribute is asked about; others use the generic prompt.
PROMPTS = {
    "style": "a photo of a {value} style product",
    "material": "a photo of a product made of {value}",
    "colour": "a photo of a {value} product",
    "color": "a photo of a {value} product",
    "object_type": "a photo of a {value}",
}
GENERIC_PROMPT = "a photo of a product with {attribute} {value}"
# The optional `templates:` entry of a vocabulary file: {attribute: prompt with {value}}, for a model
# trained on other captions (the emoji demo's models know "red apple", not "a photo of a red apple").
TEMPLATES_KEY = "templates"


def load_vocabulary(path: str | Path | None = None) -> dict[str, list[str]]:
    """The vocabularies of a YAML file (the bundled furniture/apparel default when None), checked."""
    import yaml

    path = Path(path) if path else DEFAULT_VOCABULARY
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"Attribute vocabulary {path} could not be read: {err.strerror or err}.") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"Attribute vocabulary {path} is not valid YAML: {str(err).splitlines()[0][:120]}.") from None
    example = "e.g. {style: [modern, rustic], colour: [white, black]}"
    if not isinstance(data, dict) or not set(data) - {TEMPLATES_KEY}:
        raise UserError(f"Attribute vocabulary {path} must map attribute names to lists of values, {example}.")
    if len(data) > MAX_ATTRIBUTES:
        raise UserError(f"Attribute vocabulary {path} has {len(data)} attributes; at most {MAX_ATTRIBUTES}.")
    templates = data.pop(TEMPLATES_KEY, None) or {}
    if not isinstance(templates, dict) or not all(isinstance(t, str) and "{value}" in t for t in templates.values()):
        raise UserError(f"Attribute vocabulary {path}: {TEMPLATES_KEY} maps attribute names to prompts holding "
                        "{value}, e.g. {colour: 'a {value} sofa'}.")
    vocab = {}
    for name, values in data.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in RESERVED:
            raise UserError(f"Attribute vocabulary {path}: {str(name)[:40]!r} is not a usable attribute name "
                            "(lower-case letters, digits and _, starting with a letter, not a catalog column).")
        if not isinstance(values, list) or len(values) < 2:
            raise UserError(f"Attribute vocabulary {path}: {name} needs a list of at least two values, {example}.")
        if len(values) > MAX_VALUES:
            raise UserError(f"Attribute vocabulary {path}: {name} has {len(values)} values; at most {MAX_VALUES}.")
        clean = [" ".join(str(v).split()) for v in values if v is not None]
        bad = next((v for v in clean if not v or len(v) > MAX_VALUE_CHARS or v == UNKNOWN), None)
        if bad is not None or len(clean) != len(values):
            raise UserError(f"Attribute vocabulary {path}: {name} has an unusable value {str(bad)[:40]!r} "
                            f"(empty, over {MAX_VALUE_CHARS} characters, or {UNKNOWN!r}).")
        if len(set(clean)) != len(clean):
            raise UserError(f"Attribute vocabulary {path}: {name} lists a value twice.")
        vocab[name] = clean
    unknown = [str(t) for t in templates if t not in vocab]
    if unknown:
        raise UserError(f"Attribute vocabulary {path}: {TEMPLATES_KEY} names {unknown[0][:40]!r}, which is not "
                        "an attribute of the file.")
    if templates:
        vocab[TEMPLATES_KEY] = {str(k): v for k, v in templates.items()}
    return vocab


def attributes_of(vocab: dict) -> dict[str, list[str]]:
    """The attributes and their values (the vocabulary without its prompt templates)."""
    return {k: v for k, v in vocab.items() if k != TEMPLATES_KEY}


def attribute_columns(vocab: dict) -> list[str]:
    return [c for name in attributes_of(vocab) for c in (name, f"{name}_confidence", f"{name}_margin")] + [TIER_COLUMN]


def prompt(attribute: str, value: str, templates: dict | None = None) -> str:
    template = (templates or {}).get(attribute) or PROMPTS.get(attribute, GENERIC_PROMPT)
    return template.replace("{attribute}", attribute.replace("_", " ")).replace("{value}", value)


def logit_scale(encoder) -> float:
    """The model's own temperature (CLIP learns it; 100 for OpenAI's), so probabilities mean what
    they meant in training."""
    model = getattr(encoder, "model", None)
    scale = getattr(model, "logit_scale", None)
    try:
        return float(scale.exp().item()) if scale is not None else 100.0
    except (AttributeError, RuntimeError, TypeError):
        return 100.0


class ZeroShot:
    """One model's text side for a vocabulary, encoded once; called on batches of image embeddings."""

    def __init__(self, encoder, vocab: dict[str, list[str]], min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        if not 0 <= min_confidence <= 1:
            raise UserError(f"--min-confidence {min_confidence} must be between 0 and 1.")
        self.vocab, self.min_confidence = attributes_of(vocab), min_confidence
        self.scale = logit_scale(encoder)
        templates = vocab.get(TEMPLATES_KEY)
        self.text = {name: encoder.encode_texts([prompt(name, v, templates) for v in values])
                     for name, values in self.vocab.items()}

    def __call__(self, image_embeddings: np.ndarray) -> dict[str, list]:
        return classify(image_embeddings, self.text, self.vocab, self.scale, self.min_confidence)


def classify(image_embeddings: np.ndarray, text: dict[str, np.ndarray], vocab: dict[str, list[str]], scale: float,
             min_confidence: float) -> dict[str, list]:
    """The attribute columns for L2-normalised image embeddings (N, d) against each attribute's text
    embeddings (K, d): softmax at `scale`, top value or "unknown" below `min_confidence`."""
    out: dict[str, list] = {}
    n = len(image_embeddings)
    for name, values in vocab.items():
        logits = scale * (image_embeddings.astype(np.float64) @ text[name].astype(np.float64).T)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        order = np.argsort(-probs, axis=1, kind="stable")
        top = probs[np.arange(n), order[:, 0]] if n else np.empty(0)
        second = probs[np.arange(n), order[:, 1]] if n else np.empty(0)
        out[name] = [values[k] if p >= min_confidence else UNKNOWN for k, p in zip(order[:, 0], top)]
        out[f"{name}_confidence"] = [round(float(p), 6) for p in top]
        out[f"{name}_margin"] = [round(float(p), 6) for p in top - second]
    out[TIER_COLUMN] = ["offline"] * n
    return out
