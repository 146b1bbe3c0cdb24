"""Write requirements.txt (what Hugging Face Spaces installs) from pyproject.toml's dependencies:
`python -m tools.requirements` (or `--check`: exit 1 when requirements.txt is out of date)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ("# Generated from pyproject.toml by `python -m tools.requirements`; do not edit.\n"
          "# Hugging Face Spaces installs this file (gradio itself comes from the README's sdk_version).\n")


def render(pyproject: Path = ROOT / "pyproject.toml") -> str:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return HEADER + "".join(f"{dep}\n" for dep in project["dependencies"])


def main(argv: list[str]) -> int:
    text, path = render(), ROOT / "requirements.txt"
    if "--check" in argv:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print("requirements.txt is out of date: run python -m tools.requirements", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
