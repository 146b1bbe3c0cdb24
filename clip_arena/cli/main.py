"""Entry point of the `clip-arena` console script."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from clip_arena.core.errors import UserError

COMMANDS = ("serve", "similarity", "embed", "index_cmd", "search", "finetune", "stats", "votes_cmd", "score",
            "analyze", "effectiveness", "users_cmd", "prepare", "models_cmd")


class _Version(argparse.Action):
    """argparse's version action, reading the installed version (importlib.metadata: tens of ms) only
    when --version is given rather than on every command line."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from clip_arena.core.version import __version__

        print(f"clip-arena {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="clip-arena", description="Evaluate CLIP-style image-text models.",
                                     epilog="Each command's options and examples: clip-arena COMMAND --help")
    parser.add_argument("--version", action=_Version)
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs and full tracebacks")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"clip_arena.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        # Libraries log their own retries and failures; our error message says it once.
        logging.getLogger().addHandler(logging.NullHandler())
        logging.getLogger().setLevel(logging.CRITICAL)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at exit
        return code
    except BrokenPipeError:
        # `clip-arena stats --json | head`: the reader left; stop quietly, as shell tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except UserError as err:
        if args.verbose:
            raise
        print(f"clip-arena {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
