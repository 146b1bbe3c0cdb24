"""Write the requirements files a Hugging Face Space installs, from pyproject.toml's dependencies:
`python -m tools.requirements` (or `--check`: exit 1 when one is out of date).

- requirements.txt: for CPU hardware (the Space's default, and what the README suggests). PyTorch's
  CPU index comes first in line for torch, so the Space gets torch's CPU build (the CUDA build from the
  package index is about 5 GB, 3 GB of it NVIDIA libraries a CPU never uses).
- requirements-gpu.txt: for GPU hardware (and ZeroGPU); the package index's torch is the CUDA build.
  A GPU Space uses it as its requirements.txt.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
HEADER = ("# Generated from pyproject.toml by `python -m tools.requirements`; do not edit.\n"
          "# Hugging Face Spaces installs requirements.txt (gradio itself comes from the README's sdk_version).\n")
FILES = {
    "requirements.txt": ("# For CPU hardware: torch's CPU build. On GPU hardware, use requirements-gpu.txt as "
                         "requirements.txt.\n"
                         f"--extra-index-url {CPU_TORCH_INDEX}\n"),
    "requirements-gpu.txt": ("# For GPU hardware (and ZeroGPU): torch's CUDA build. Copy this file over "
                             "requirements.txt on a GPU Space.\n"),
}


def render(pyproject: Path = ROOT / "pyproject.toml", name: str = "requirements.txt") -> str:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return HEADER + FILES[name] + "".join(f"{dep}\n" for dep in project["dependencies"])


def main(argv: list[str]) -> int:
    stale = [name for name in FILES
             if not (ROOT / name).exists() or (ROOT / name).read_text(encoding="utf-8") != render(name=name)]
    if "--check" in argv:
        if stale:
            print(f"{', '.join(stale)} out of date: run python -m tools.requirements", file=sys.stderr)
            return 1
        return 0
    for name in FILES:
        (ROOT / name).write_text(render(name=name), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
