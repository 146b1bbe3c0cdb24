"""The models file: named models as configuration (YAML or TOML), or one environment variable per model.

    models:
      base: {spec: "demo:base", default: true}
      tuned: {spec: "demo:finetuned", precision: fp32, browser: false, calibration: tuned.calibration.json}
      both: {fusion: {base: 0.5, tuned: 0.5}}

Environment (a Kubernetes ConfigMap loaded as env): CLIP_ARENA_MODEL__<NAME>=SPEC, or a JSON object with
the same keys as a file entry: CLIP_ARENA_MODEL__TUNED='{"spec": "demo:finetuned", "browser": false}'.
NAME is lower-cased; env entries are added to the file's (and replace one of the same name).

Loading validates everything before anything is used: a bad entry raises UserError naming the model,
the key and why, in one sentence, so a caller can keep its previous configuration."""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

from clip_arena.core.errors import ModelLoadError, UserError
from clip_arena.models.spec import absolute_spec, parse_spec

ENV_FILE = "CLIP_ARENA_MODELS_FILE"
ENV_PREFIX = "CLIP_ARENA_MODEL__"
MAX_FILE_BYTES = 1024 * 1024  # a models file is a few hundred bytes; a huge one is a mistake, not a config
MAX_MODELS = 64
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PRECISIONS = ("fp32", "fp16", "bf16")
SPEC_KEYS = {"spec", "default", "precision", "device", "batch_size", "browser", "calibration"}
FUSION_KEYS = {"fusion", "default", "browser"}


@dataclass(frozen=True)
class ModelEntry:
    """One named model: an encoder (spec) or a weighted fusion of other named models."""

    name: str
    spec: str | None = None  # local paths made absolute against the models file's folder
    default: bool = False
    precision: str | None = None
    device: str | None = None
    batch_size: int | None = None
    browser: bool = True  # offered in the browser's pickers; False: the command line only
    calibration: str | None = None  # absolute path of a calibration JSON
    fusion: tuple[tuple[str, float], ...] | None = None  # (member NAME, weight), in the file's order

    @property
    def is_fusion(self) -> bool:
        return self.fusion is not None

    def describe(self) -> str:
        if self.fusion is not None:
            return "fusion: " + " + ".join(f"{n} {w:g}" for n, w in self.fusion)
        return self.spec or ""


@dataclass(frozen=True)
class ModelsConfig:
    entries: Mapping[str, ModelEntry]  # in the file's order
    source: str  # the file's path, "environment", or both
    digest: str = ""  # of the validated entries: a reload that changes nothing is no swap
    default: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))
        marked = [e.name for e in self.entries.values() if e.default]
        object.__setattr__(self, "default", marked[0] if marked else next(iter(self.entries)))

    def browser_names(self, fusions: bool = True) -> list[str]:
        return [e.name for e in self.entries.values() if e.browser and (fusions or not e.is_fusion)]


def _fail(where: str, message: str, sep: str = ":"):
    raise UserError(f"{where}{sep} {message}.")


def read_regular(path: Path, limit: int, what: str) -> bytes:
    """At most limit + 1 bytes of `path`, refused in one sentence unless it is a regular file: a FIFO
    or a device there must never block the reader (a reload holds its lock while it reads)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as err:
        _fail(what, sep="", message=f"cannot be read ({err.strerror or err})")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            _fail(what, sep="", message="is not a regular file (a FIFO, a device or a folder cannot hold it)")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit + 1)
    except OSError as err:
        _fail(what, sep="", message=f"cannot be read ({err.strerror or err})")
    finally:
        os.close(fd)


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last one
    silently: a second model of the same NAME would hide the first)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: the base loader says so
                if first is not None:
                    raise _DuplicateKey(
                        None, None, f"{str(key)[:40]!r} is given twice (first on line {first}); each key, and so "
                        "each model NAME, must be unique", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _syntax_error(err: Exception) -> str:
    """A parser's complaint in one line, with where it is: 'line L, column C: problem'."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({err.context})" if err.context and err.context != err.problem else ""
        return f"{where}{err.problem}{context}"
    text = " ".join(str(err).split())
    return text or type(err).__name__


def read_file(path: str | os.PathLike) -> dict:
    """The models file's mapping, parsed (YAML, or TOML for a .toml file); UserError when unreadable."""
    path = Path(path)
    where = f"Models file {path}"
    raw = read_regular(path, MAX_FILE_BYTES, where)
    if len(raw) > MAX_FILE_BYTES:
        _fail(where, sep="", message=f"is larger than {MAX_FILE_BYTES // 1024} KiB, far more than a models file needs")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        _fail(where, sep="", message=f"is not UTF-8 text (byte {err.start})")
    toml = path.suffix.lower() == ".toml"
    try:
        data = tomllib.loads(text) if toml else yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except _DuplicateKey as err:  # valid YAML, but never what the writer meant
        _fail(where, _syntax_error(err))
    except (tomllib.TOMLDecodeError, yaml.YAMLError, RecursionError, ValueError) as err:
        _fail(where, sep="", message=f"is not valid {'TOML' if toml else 'YAML'} ({_syntax_error(err)[:300]})")
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        _fail(where, sep="", message="must hold a `models` mapping of NAME to its entry (models: {NAME: {spec: SPEC}})")
    unknown = sorted(map(str, set(data) - {"models"}))
    if unknown:
        _fail(where, sep="", message=f"has unknown top-level key {unknown[0][:40]!r} (only `models` is read)")
    return data["models"]


def read_env(environ: Mapping[str, str]) -> dict:
    """The models defined by CLIP_ARENA_MODEL__<NAME> variables, as file entries."""
    models = {}
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX):
            continue
        name, value = key[len(ENV_PREFIX):].lower(), environ[key].strip()
        if value.startswith("{"):
            try:
                models[name] = json.loads(value)
            except ValueError as err:
                _fail(f"Environment variable {key}", sep="", message=f"is not a JSON object ({err})")
        else:
            models[name] = {"spec": value}
    return models


def load(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None,
         files_must_exist: bool = True) -> ModelsConfig:
    """The validated configuration from the models file (`path`, else $CLIP_ARENA_MODELS_FILE) and
    the CLIP_ARENA_MODEL__<NAME> variables; UserError naming the first bad entry."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(ENV_FILE) or None
    raw, sources = {}, []
    if path:
        raw.update(read_file(path))
        sources.append(str(path))
    env = read_env(environ)
    if env:
        raw.update(env)
        sources.append("environment")
    if not raw and not path:
        raise UserError(f"No models configured: give --models FILE, {ENV_FILE}, or {ENV_PREFIX}<NAME> variables.")
    folder = Path(path).resolve().parent if path else Path.cwd()
    return validate(raw, folder, " and ".join(sources), files_must_exist)


def validate(raw: Mapping, folder: Path, source: str, files_must_exist: bool = True) -> ModelsConfig:
    if not raw:
        _fail(f"No models configured: {source}", "names none", sep="")
    if len(raw) > MAX_MODELS:
        _fail(f"Models in {source}", f"{len(raw)} are named, at most {MAX_MODELS} are allowed")
    entries = {}
    try:
        for name, body in raw.items():
            entries[name] = _entry(name, body, folder, files_must_exist)
        _check_fusions(entries)
        defaults = [e.name for e in entries.values() if e.default]
        if len(defaults) > 1:
            _fail(f"Model {defaults[1]!r}", f"key 'default': only one model may be the default, and {defaults[0]!r} is")
    except UserError as err:  # which file (or the environment) holds the bad entry
        text = str(err)
        raise UserError(f"In {source}, {text[:1].lower()}{text[1:]}") from None
    digest = hashlib.sha256(repr(list(entries.values())).encode()).hexdigest()[:16]
    return ModelsConfig(entries, source, digest)


def _entry(name, body, folder: Path, files_must_exist: bool = True) -> ModelEntry:
    if isinstance(name, (bool, int, float)) or name is None:  # YAML reads 123, 1.5, yes, ~ as such
        _fail(f"Model name {_show(name)}", f"is read as {_kind(name)}, not text: quote it ('{name}': ...)", sep="")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        _fail(f"Model name {str(name)[:40]!r}", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with "
              "a letter or digit")
    where = f"Model {name!r}"
    if isinstance(body, str):
        body = {"spec": body}  # NAME: SPEC, the short form
    if not isinstance(body, dict):
        _fail(where, f"its entry must be a mapping (spec: SPEC, ...), not {_kind(body)}")
    unknown = sorted(str(k) for k in body if k not in SPEC_KEYS | FUSION_KEYS)
    if unknown:  # before the spec-or-fusion rule: a misspelt `spec` is a typo to name, not a missing key
        close = difflib.get_close_matches(unknown[0], sorted(SPEC_KEYS | FUSION_KEYS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(SPEC_KEYS | FUSION_KEYS))}"
        _fail(where, f"unknown key {unknown[0][:40]!r} ({hint})")
    fusion = "fusion" in body
    if fusion == ("spec" in body):
        _fail(where, "give either `spec` (a model) or `fusion` (a weighted combination of named models)")
    allowed = FUSION_KEYS if fusion else SPEC_KEYS
    misplaced = sorted(str(k) for k in body if k not in allowed)
    if misplaced:
        _fail(where, f"key {misplaced[0][:40]!r} does not apply to a {'fusion' if fusion else 'model with a spec'} "
              f"(allowed: {', '.join(sorted(allowed))})")
    values = {"name": name, "default": _bool(where, body, "default", False), "browser": _bool(where, body, "browser", True)}
    if fusion:
        values["fusion"] = _fusion(where, body["fusion"], name)
        return ModelEntry(**values)
    values["spec"] = _spec(where, body["spec"], folder)
    precision = body.get("precision")
    if precision is not None and precision not in PRECISIONS:
        _fail(where, f"key 'precision' must be one of {', '.join(PRECISIONS)}, not {_show(precision)}")
    values["precision"] = precision
    device = body.get("device")
    if device is not None and (not isinstance(device, str) or not re.fullmatch(r"cpu|mps|cuda(:\d{1,2})?", device)):
        _fail(where, f"key 'device' must be cpu, cuda, cuda:N or mps, not {_show(device)}")
    values["device"] = device
    size = body.get("batch_size")
    if size is not None and (type(size) is not int or not 1 <= size <= 4096):
        _fail(where, f"key 'batch_size' must be a whole number from 1 to 4096, not {_show(size)}")
    values["batch_size"] = size
    calibration = body.get("calibration")
    if calibration is not None:
        if not isinstance(calibration, str) or not calibration.strip() or "\x00" in calibration:
            _fail(where, f"key 'calibration' must be a file path, not {_show(calibration)}")
        full = (folder / Path(calibration).expanduser()).resolve()
        if files_must_exist and not full.is_file():
            if full.exists():  # a FIFO or a device (/dev/zero) must never be read as one
                _fail(where, f"key 'calibration': {full} is not a regular file")
            _fail(where, f"key 'calibration': the file {full} does not exist (make one with "
                  f"`clip-arena models calibrate {name} --pairs CSV`)")
        values["calibration"] = str(full)
    return ModelEntry(**values)


def _spec(where: str, spec, folder: Path) -> str:
    if not isinstance(spec, str) or not spec.strip() or "\x00" in spec or len(spec) > 1000:
        _fail(where, f"key 'spec' must be a model spec such as demo:base or open_clip:ViT-B-32@openai, not {_show(spec)}")
    try:
        parse_spec(spec)
        return absolute_spec(spec.strip(), folder)  # relative paths: against the models file's folder
    except (ModelLoadError, ValueError, OSError) as err:
        _fail(where, f"key 'spec': {str(err).rstrip('.')}")


def _fusion(where: str, members, own: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(members, dict) or not members:
        _fail(where, f"key 'fusion' must map member NAMEs to weights ({{a: 0.5, b: 0.5}}), not {_show(members)}")
    out = []
    for member, weight in members.items():
        if not isinstance(member, str):
            _fail(where, f"key 'fusion': member {_show(member)} must be a model name")
        if member == own:
            _fail(where, "key 'fusion' names the model itself")
        number = _number(weight)
        if number is None or not math.isfinite(number) or number <= 0:
            _fail(where, f"key 'fusion': the weight of {member!r} must be a number above 0, not {_show(weight)}")
        out.append((member, number))
    return tuple(out)


def _number(value) -> float | None:
    """A weight as a float: a number, or text float() reads (YAML 1.1 reads 1e308 and 5e-1 as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and len(value) <= 40:
        try:
            return float(value.replace("_", "x"))  # float() would take 1_0; YAML writers mean no such thing
        except ValueError:
            return None
    return None


def _check_fusions(entries: dict[str, ModelEntry]) -> None:
    """Members are named models with a spec and a calibration: a fusion of fusions (and so any cycle)
    is refused, and only calibrated probabilities can be averaged across models."""
    for entry in entries.values():
        for member, _ in entry.fusion or ():
            where = f"Model {entry.name!r}"
            if member not in entries:
                _fail(where, f"key 'fusion' names {member[:64]!r}, which is not a model in this configuration")
            if entries[member].is_fusion:
                _fail(where, f"key 'fusion' names {member!r}, itself a fusion: members must be models with a spec")
            if entries[member].calibration is None:
                _fail(where, f"key 'fusion' names {member!r}, which has no calibration: fused scores are calibrated "
                      f"probabilities (`clip-arena models calibrate {member} --pairs CSV`)")


def _bool(where: str, body: dict, key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        _fail(where, f"key {key!r} must be true or false, not {_show(value)}")
    return value


def _kind(value) -> str:
    return {list: "a list", int: "a number", float: "a number", bool: "true or false", type(None): "empty"}.get(
        type(value), type(value).__name__)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
