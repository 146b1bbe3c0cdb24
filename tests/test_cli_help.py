"""`clip-arena --help`, `--version` and `clip-arena COMMAND --help` answer at once: they import none
of the heavy libraries (each command imports those when it runs), and every command's help says what
it does and shows an example."""

import json
import subprocess
import sys

import pytest

from conftest import with_project

# Libraries that take from tens of milliseconds (numpy, PIL) to seconds (torch, gradio) to import.
HEAVY = ("torch", "torchvision", "gradio", "pandas", "pyarrow", "faiss", "PIL", "open_clip", "transformers",
         "numpy", "scipy", "sklearn", "cv2", "plotly", "peft", "ray", "tqdm")

# Runs in a fresh interpreter: every help and --version the parser offers, each through main() as the
# console script calls it; prints, per command line, its output and the heavy modules loaded so far.
SCRIPT = r"""
import argparse, contextlib, io, json, sys
from clip_arena.cli.main import main, build_parser

def actions(parser):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subs[0].choices if subs else {}

lines = [["--version"], ["--help"]]
for name, sub in actions(build_parser()).items():
    lines.append([name, "--help"])
    lines += [[name, action, "--help"] for action in actions(sub)]
out = {}
for argv in lines:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
    out[" ".join(argv)] = {"code": code, "stdout": buf.getvalue(), "heavy": heavy}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def helps() -> dict:
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + SCRIPT], capture_output=True, text=True,
                          timeout=300, env=with_project())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_help_version_and_every_command_help_import_no_heavy_library(helps):
    assert len(helps) > 14  # --version, --help, the 12 commands and their actions
    for argv, result in helps.items():
        assert result["code"] == 0, argv
        assert result["heavy"] == [], f"`clip-arena {argv}` imported {', '.join(result['heavy'])}"


def test_version_and_help_print_what_a_user_expects(helps):
    assert helps["--version"]["stdout"].startswith("clip-arena ")
    top = helps["--help"]["stdout"]
    for command in ("serve", "similarity", "embed", "index", "search", "finetune", "stats", "votes", "score",
                    "analyze", "effectiveness", "users"):
        assert f"{command} --help" in helps, command
        assert f"\n    {command} " in top or f"\n    {command}\n" in top, command


def test_every_command_help_has_a_description_and_an_example(helps):
    for argv, result in helps.items():
        if argv.startswith("--"):
            continue
        text = result["stdout"]
        usage, _, rest = text.partition("\n\n")
        assert usage.startswith("usage: clip-arena "), argv
        # The description is the paragraph after the usage, before the first options heading.
        description = rest.split("\n\n")[0]
        assert description.strip() and not description.splitlines()[0].endswith(":"), f"{argv}: no description"
        examples = [line.strip() for line in text.splitlines() if line.strip().startswith("clip-arena ")]
        assert examples, f"{argv}: no example line starting with 'clip-arena '"
        command = argv.removesuffix(" --help")
        assert any(e.startswith(f"clip-arena {command}") for e in examples), f"{argv}: examples of another command"


def test_stats_catalog_help_does_not_promise_what_the_text_output_leaves_out(helps):
    lines = helps["stats --help"]["stdout"].splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("--catalog CATALOG"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("-") or not lines[i].strip())
    catalog = " ".join(" ".join(lines[start:end]).split())
    assert "breakdowns" in catalog and "--json" in catalog, catalog
