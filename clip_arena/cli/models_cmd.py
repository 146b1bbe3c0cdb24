"""clip-arena models list|check [--models FILE] [--json] | clip-arena models calibrate NAME --pairs CSV --models FILE"""

from __future__ import annotations

import argparse
import os
import sys
import time

from clip_arena.core.errors import UserError

DESCRIPTION = """\
The models file (YAML or TOML; --models FILE, $CLIP_ARENA_MODELS_FILE, or CLIP_ARENA_MODEL__<NAME>
variables): what it names, whether each model loads (time and memory), and calibrations that make a
model's scores read as the probability of a match."""
EXAMPLES = """\
examples:
  clip-arena models list --models models.yaml
  clip-arena models check --models models.yaml --json
  clip-arena models calibrate tuned --pairs pairs.csv --models models.yaml"""
LIST_DESCRIPTION = """\
Print what the models file would load, one line per NAME: its spec (or fusion), and whether it is the
default, offered in the browser, calibrated. Nothing is loaded."""
CHECK_DESCRIPTION = """\
Load each model of the models file, one after the other, and print its load time and memory (resident
memory added, and CUDA memory on a GPU); a model that fails is named with why, and the exit code is 2."""
CALIBRATE_DESCRIPTION = """\
Calibrate one named model from matched and mismatched image-caption pairs (a CSV with image, caption
and match columns): its scores can then be read as a percentile among mismatched pairs and a probability
of a match. Saved as JSON (by default NAME.calibration.json beside the models file); put
`calibration: PATH` in the model's entry to use it."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("models", help="list, check or calibrate the models of a models file",
                              description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for name, text, help_ in (("list", LIST_DESCRIPTION, "print what the models file names"),
                              ("check", CHECK_DESCRIPTION, "load each model: time, memory, failures")):
        action = sub.add_parser(name, help=help_, description=text,
                                epilog=f"examples:\n  clip-arena models {name} --models models.yaml",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_common(action)
    cal = sub.add_parser("calibrate", help="calibrate a named model from matched and mismatched pairs",
                         description=CALIBRATE_DESCRIPTION,
                         epilog="examples:\n  clip-arena models calibrate tuned --pairs pairs.csv --models models.yaml "
                                "--method platt",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cal.add_argument("name", metavar="NAME", help="a model of the models file (not a fusion)")
    cal.add_argument("--pairs", required=True, metavar="CSV", help="image, caption and match (1/0) columns")
    cal.add_argument("--method", choices=["isotonic", "platt"], default="isotonic", help="default: isotonic")
    cal.add_argument("-o", "--output", metavar="PATH", help="default: NAME.calibration.json beside the models file")
    _add_common(cal)
    p.set_defaults(run=run)


def _add_common(parser) -> None:
    parser.add_argument("--models", dest="models_file", metavar="FILE",
                        help="models file (default: $CLIP_ARENA_MODELS_FILE and CLIP_ARENA_MODEL__<NAME> variables)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", help="for models whose entry names none: cpu, cuda, cuda:1, mps")
    parser.add_argument("--precision", choices=["fp32", "fp16", "bf16"], help="for models whose entry names none")


def run(args) -> int:
    from clip_arena.models import config

    # Calibrating: the entry may already name the file it is about to get.
    cfg = config.load(args.models_file, files_must_exist=args.models_command != "calibrate")
    if args.models_command == "list":
        return list_models(cfg, args.json)
    if args.models_command == "check":
        return check_models(cfg, args)
    return calibrate_model(cfg, args)


def _row(cfg, entry) -> dict:
    return {"name": entry.name, "spec": entry.spec, "fusion": dict(entry.fusion) if entry.fusion else None,
            "default": entry.name == cfg.default, "browser": entry.browser, "calibration": entry.calibration,
            "precision": entry.precision, "device": entry.device, "batch_size": entry.batch_size}


def list_models(cfg, as_json: bool) -> int:
    from clip_arena.cli.common import print_json

    rows = [_row(cfg, e) for e in cfg.entries.values()]
    if as_json:
        print_json({"source": cfg.source, "default": cfg.default, "models": rows})
        return 0
    print(f"models from {cfg.source} ({len(rows)}; default {cfg.default}):")
    width = max(len(r["name"]) for r in rows)
    for entry, row in zip(cfg.entries.values(), rows):
        notes = [n for n, on in (("default", row["default"]), ("command line only", not row["browser"])) if on]
        notes += [f"{k} {row[k]}" for k in ("precision", "device", "batch_size") if row[k]]
        notes += [f"calibration {row['calibration']}"] if row["calibration"] else []
        print(f"  {entry.name:<{width}}  {entry.describe()}" + (f"  ({'; '.join(notes)})" if notes else ""))
    return 0


def _rss() -> int | None:
    """This process's resident memory in bytes (Linux), else None."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _mb(value) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MB"


def _import_backends(cfg) -> None:
    from clip_arena.models.spec import parse_spec

    backends = {parse_spec(e.spec).backend for e in cfg.entries.values() if e.spec}
    if backends & {"open_clip", "demo"}:
        import open_clip  # noqa: F401
    if "hf" in backends:
        import transformers  # noqa: F401


def check_models(cfg, args) -> int:
    """Each model loaded in turn, in this one process, and asked to encode a caption."""
    import torch

    from clip_arena.cli.common import print_json
    from clip_arena.models.registry import get_encoder

    _import_backends(cfg)  # so that the first model's time and memory are its own, not the libraries'
    results, loaded = [], {}
    for entry in cfg.entries.values():
        row = {"name": entry.name, "spec": entry.describe(), "ok": False, "load_s": None, "rss_added_bytes": None,
               "cuda_bytes": None, "error": None}
        try:
            if entry.is_fusion:
                missing = [m for m, _ in entry.fusion if m not in loaded]
                if missing:
                    raise UserError(f"its member {missing[0]} did not load")
                from clip_arena.models.fusion import Fusion, Member

                Fusion([Member(m, w, *loaded[m]) for m, w in entry.fusion])
            else:
                rss, start = _rss(), time.perf_counter()
                cuda = torch.cuda.memory_allocated() if torch.cuda.is_available() else None
                encoder = get_encoder(entry.spec, entry.device or args.device, entry.precision or args.precision)
                encoder.encode_texts(["a check"])  # loaded and answering
                row["load_s"] = round(time.perf_counter() - start, 3)
                after = _rss()
                row["rss_added_bytes"] = after - rss if rss is not None and after is not None else None
                if cuda is not None:
                    row["cuda_bytes"] = torch.cuda.memory_allocated() - cuda
                calibration = None
                if entry.calibration:
                    from clip_arena.models.calibration import Calibration

                    calibration = Calibration.load(entry.calibration)
                    calibration.check(encoder)
                loaded[entry.name] = (encoder, calibration)
            row["ok"] = True
        except Exception as err:  # noqa: BLE001 - each failure is named on its line; the others are still checked
            row["error"] = str(err).strip().rstrip(".") or type(err).__name__
        results.append(row)
        if not args.json:
            if row["ok"] and entry.is_fusion:
                print(f"{entry.name}: ok, {row['spec']}")
            elif row["ok"]:
                gpu = f", CUDA {_mb(row['cuda_bytes'])}" if row["cuda_bytes"] is not None else ""
                print(f"{entry.name}: ok, {row['spec']} loaded in {row['load_s']:.2f} s, "
                      f"+{_mb(row['rss_added_bytes'])} resident{gpu}", flush=True)
            else:
                print(f"{entry.name}: FAILED, {row['spec']}: {row['error']}", flush=True)
    failed = [r["name"] for r in results if not r["ok"]]
    if args.json:
        print_json({"source": cfg.source, "models": results, "failed": failed})
        return 2 if failed else 0
    if failed:
        raise UserError(f"{len(failed)} of {len(results)} models did not load: {', '.join(failed)}.")
    return 0


def calibrate_model(cfg, args) -> int:
    from pathlib import Path

    from clip_arena.cli.common import print_json
    from clip_arena.models.calibration import calibrate, read_pairs, reliability_table
    from clip_arena.models.registry import get_encoder

    entry = cfg.entries.get(args.name)
    if entry is None:
        raise UserError(f"There is no model {args.name!r} in {cfg.source}; it names {', '.join(cfg.entries)}.")
    if entry.is_fusion:
        raise UserError(f"Model {args.name!r} is a fusion: calibrate its members ({', '.join(m for m, _ in entry.fusion)}).")
    path = args.models_file or os.environ.get("CLIP_ARENA_MODELS_FILE")
    folder = Path(path).resolve().parent if path else Path.cwd()
    output = Path(args.output) if args.output else folder / f"{entry.name}.calibration.json"
    pairs = read_pairs(args.pairs)
    encoder = get_encoder(entry.spec, entry.device or args.device, entry.precision or args.precision)
    result = calibrate(encoder, pairs, method=args.method, name=entry.name, spec=entry.spec,
                       progress=lambda message: print(message, file=sys.stderr, flush=True))
    result.save(output)
    if args.json:
        print_json({"name": entry.name, "spec": entry.spec, "method": result.method, "ece": result.ece,
                    "reliability": result.reliability, "n_matched": result.n_matched,
                    "n_mismatched": result.n_mismatched, "output": str(output)})
        return 0
    print(f"calibrated {entry.name} ({entry.spec}, {result.method}) on {result.n_matched} matched and "
          f"{result.n_mismatched} mismatched pairs; the reliability curve of held-out predictions:")
    print(reliability_table(result))  # per bin: predicted vs observed share of matches, then the ECE
    print(f"saved to {output}; to use it, add to the entry of {entry.name}: calibration: {output}")
    return 0
