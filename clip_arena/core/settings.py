"""All configuration in one place: defaults that serve the bundled demo, overridden by
environment variables (CLIP_ARENA_*), overridden in turn by command-line arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

# The demo catalog, demo models and reference captions: inside the package when installed from the
# wheel, at the repository's top in a checkout (the design card's layout; see clip_arena/__init__.py).
_PACKAGE = Path(__file__).resolve().parent.parent
ASSETS_DIR = next((d for d in (_PACKAGE / "assets", _PACKAGE.parent / "assets") if d.is_dir()), _PACKAGE / "assets")

# Photos are scored by a real CLIP; the demo model stands in only when it cannot be loaded
# (models.fallback).
DEFAULT_MODEL = "open_clip:ViT-B-32@openai"
DEFAULT_CATALOG = ASSETS_DIR / "demo" / "catalog.parquet"


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _image_roots() -> list[str] | None:
    """CLIP_ARENA_IMAGE_ROOTS (os.pathsep-separated); by default the working folder when running
    locally, and none on a hosted Space (SPACE_ID set), where local paths are off."""
    value = os.environ.get("CLIP_ARENA_IMAGE_ROOTS")
    if value is not None:
        return [p for p in value.split(os.pathsep) if p] or None
    return None if os.environ.get("SPACE_ID") else [os.getcwd()]


@dataclass(frozen=True)
class FetchLimits:
    """Caps applied to every image read, local or remote."""

    max_bytes: int = 20 * 1024 * 1024
    timeout_s: float = 10.0
    max_pixels: int = 40_000_000
    max_redirects: int = 5
    allow_private_urls: bool = False
    # Hosts whose private addresses may be fetched anyway: the owner's catalog image hosts, for the
    # arena's catalog images only (serve --catalog-hosts); every redirect hop is checked on its own.
    trusted_hosts: tuple[str, ...] = ()
    # Pixels being decoded at once across all threads (memory bound); 0: unbounded.
    decode_pixels: int = 120_000_000


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    # Whether the user named the model (--model, CLIP_ARENA_MODEL): a named model that cannot load is an
    # error; only the default may fall back to the demo model (models/fallback.py).
    model_named: bool = False
    catalog: str = str(DEFAULT_CATALOG)
    votes: str = "votes.db"
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str | None = None  # one NAME:PASSWORD pair
    users_file: str | None = None  # one name:password per line (passwords may be hashed): see core/auth.py
    offline: bool = False
    device: str | None = None  # None: pick CUDA, MPS or CPU by itself
    precision: str | None = None  # None: fp16 on CUDA, fp32 elsewhere
    limits: FetchLimits = field(default_factory=FetchLimits)
    # Folders local image paths in batch CSVs must stay under; None: local paths off.
    image_roots: list[str] | None = None
    max_upload: str = "50mb"  # largest file the browser may upload (a batch CSV, an image)
    effectiveness_model: str | None = None  # a trained model file for the Analyze tab's prediction
    # Models the browser may pick besides `model` (none given: the bundled demo models); the
    # command line may load any spec.
    browser_models: tuple[str, ...] = ()
    # A models file (YAML/TOML) naming the models, reloaded while the app runs (models/config.py, live.py);
    # when given, the pickers offer its NAMEs instead of --model and --browser-model.
    models_file: str | None = None
    queue_size: int = 64  # events waiting in the web queue before new ones are turned away
    batch_jobs: int = 2  # Batch CSV runs at once: a small batch need not wait behind a long one
    model_jobs: int = 2  # Similarity and Analyze runs at once, each tab its own group
    upload_max_age_s: int = 3600  # uploads and results older than this are deleted from the temp folder
    gold_share: float = 0.0  # share of arena rounds shown again with sides swapped (arena/gold.py)
    hosted: bool = False  # a shared deployment: a Space (SPACE_ID) or --hosted (see core/hosting.py)
    # Where votes outlive this machine: hf:OWNER/NAME (a dataset repo) or a mounted folder (votes/targets.py).
    vote_target: str | None = None
    push_minutes: float | None = None  # minutes between pushes (default 5 for a repo, 1 for a folder; 0: each vote)
    allow_anonymous: bool | None = None  # typed names without a login; None: yes locally, no when hosted
    max_votes_per_hour: int = 0  # per annotator; 0: no cap
    min_display_ms: int = 400  # a vote cast sooner after its round appeared is flagged for review
    max_batch_rows: int = 0  # rows of one web batch; 0: 5,000 when hosted, none locally (core/hosting.py)
    explore: bool | None = None  # the Explore tab; None: only where annotators neither sign in nor share a host
    admins: tuple[str, ...] = ()  # signed-in names that own the arena (Results, exports, Explore): core/hosting.py
    catalog_hosts: tuple[str, ...] = ()  # hosts of catalog image URLs fetched even on a private network

    @classmethod
    def from_env(cls) -> "Settings":
        limits = FetchLimits(
            max_bytes=_env_int("CLIP_ARENA_MAX_IMAGE_BYTES", FetchLimits.max_bytes),
            timeout_s=float(os.environ.get("CLIP_ARENA_FETCH_TIMEOUT", FetchLimits.timeout_s)),
            max_pixels=_env_int("CLIP_ARENA_MAX_PIXELS", FetchLimits.max_pixels),
            allow_private_urls=_env_bool("CLIP_ARENA_ALLOW_PRIVATE_URLS"),
            decode_pixels=_env_int("CLIP_ARENA_DECODE_PIXELS", FetchLimits.decode_pixels),
        )
        return cls(
            model=os.environ.get("CLIP_ARENA_MODEL") or DEFAULT_MODEL,
            model_named=bool(os.environ.get("CLIP_ARENA_MODEL")),
            catalog=os.environ.get("CLIP_ARENA_CATALOG", str(DEFAULT_CATALOG)),
            votes=os.environ.get("CLIP_ARENA_VOTES", "votes.db"),
            # Spaces sets GRADIO_SERVER_NAME=0.0.0.0; honour it as gradio itself would.
            host=os.environ.get("CLIP_ARENA_HOST") or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
            port=_env_int("CLIP_ARENA_PORT", _env_int("GRADIO_SERVER_PORT", 7860)),
            auth=os.environ.get("CLIP_ARENA_AUTH") or None,
            users_file=os.environ.get("CLIP_ARENA_USERS") or None,
            offline=_env_bool("HF_HUB_OFFLINE") or _env_bool("CLIP_ARENA_OFFLINE"),
            device=os.environ.get("CLIP_ARENA_DEVICE") or None,
            precision=os.environ.get("CLIP_ARENA_PRECISION") or None,
            limits=limits,
            image_roots=_image_roots(),
            max_upload=os.environ.get("CLIP_ARENA_MAX_UPLOAD", "50mb"),
            effectiveness_model=os.environ.get("CLIP_ARENA_EFFECTIVENESS_MODEL") or None,
            browser_models=tuple(m.strip() for m in os.environ.get("CLIP_ARENA_MODELS", "").split(",") if m.strip()),
            models_file=os.environ.get("CLIP_ARENA_MODELS_FILE") or None,
            queue_size=_env_int("CLIP_ARENA_QUEUE_SIZE", 64),
            batch_jobs=_env_int("CLIP_ARENA_BATCH_JOBS", 2),
            model_jobs=_env_int("CLIP_ARENA_MODEL_JOBS", 2),
            upload_max_age_s=_env_int("CLIP_ARENA_UPLOAD_MAX_AGE", 3600),
            gold_share=float(os.environ.get("CLIP_ARENA_GOLD_SHARE") or 0.0),
            hosted=bool(os.environ.get("SPACE_ID")) or _env_bool("CLIP_ARENA_HOSTED"),
            vote_target=os.environ.get("CLIP_ARENA_VOTE_TARGET") or None,
            push_minutes=float(os.environ["CLIP_ARENA_PUSH_MINUTES"]) if os.environ.get("CLIP_ARENA_PUSH_MINUTES") else None,
            allow_anonymous=_env_bool("CLIP_ARENA_ALLOW_ANONYMOUS") if os.environ.get("CLIP_ARENA_ALLOW_ANONYMOUS") else None,
            max_votes_per_hour=_env_int("CLIP_ARENA_MAX_VOTES_PER_HOUR", 0),
            min_display_ms=_env_int("CLIP_ARENA_MIN_DISPLAY_MS", 400),
            max_batch_rows=_env_int("CLIP_ARENA_MAX_BATCH_ROWS", 0),
            explore=_env_bool("CLIP_ARENA_EXPLORE") if os.environ.get("CLIP_ARENA_EXPLORE") else None,
            admins=tuple(n.strip() for n in os.environ.get("CLIP_ARENA_ADMINS", "").split(",") if n.strip()),
            catalog_hosts=tuple(h.strip().lower() for h in os.environ.get("CLIP_ARENA_CATALOG_HOSTS", "").split(",")
                                if h.strip()),
        )

    def catalog_limits(self) -> FetchLimits:
        """The fetch limits for the catalog's own image URLs: the owner's --catalog-hosts may be private."""
        return replace(self.limits, trusted_hosts=self.catalog_hosts)

    def with_overrides(self, **overrides) -> "Settings":
        """Apply command-line values; None means 'not given' and keeps the current value."""
        names = {f.name for f in fields(self)}
        limit_names = {f.name for f in fields(self.limits)}
        top = {k: v for k, v in overrides.items() if v is not None and k in names}
        if "model" in top and "model_named" not in top:
            top["model_named"] = True
        lim = {k: v for k, v in overrides.items() if v is not None and k in limit_names}
        out = replace(self, **top)
        return replace(out, limits=replace(out.limits, **lim)) if lim else out


def apply_offline(settings: Settings) -> None:
    """Offline mode is read by huggingface_hub and transformers from the environment."""
    if settings.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
