"""The repository can be pushed to a Hugging Face Space as it is: README front matter for the tested
Gradio, requirements.txt in sync with pyproject.toml, packages.txt, app.py, and @spaces.GPU."""

import subprocess
import sys
import tomllib
import types

import gradio
import yaml

from conftest import ROOT
from tools.requirements import render


def _front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's front matter"
    return yaml.safe_load(text.split("---\n")[1])


def test_front_matter_names_the_tested_gradio_and_the_entry_point():
    meta = _front_matter()
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).is_file()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert str(meta["python_version"]) >= requires.removeprefix(">=")
    assert isinstance(meta["short_description"], str) and len(meta["short_description"]) <= 60
    assert meta["hf_oauth"] is True and meta["suggested_hardware"]


def test_requirements_files_are_generated_from_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in ("requirements.txt", "requirements-gpu.txt"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert text == render(name=name)
        assert [l for l in text.splitlines() if l and not l.startswith(("#", "--"))] == deps
    check = subprocess.run([sys.executable, "-m", "tools.requirements", "--check"], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_a_cpu_space_gets_torch_cpu_build_and_a_gpu_space_the_cuda_one():
    options = lambda name: [l for l in (ROOT / name).read_text().splitlines() if l.startswith("--")]  # noqa: E731
    assert options("requirements.txt") == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    assert options("requirements-gpu.txt") == []
    assert _front_matter()["suggested_hardware"].startswith("cpu")  # the default file fits the suggestion


def test_the_check_fails_when_pyproject_changes(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text((ROOT / "pyproject.toml").read_text().replace('"scipy>=1.11",', '"scipy>=1.12",'))
    assert render(pyproject) != (ROOT / "requirements.txt").read_text()


def test_packages_txt_lists_debian_package_names_only():
    names = (ROOT / "packages.txt").read_text().split()
    assert names and all(n.replace("-", "").replace(".", "").isalnum() and n.islower() for n in names)


def test_gpu_is_a_no_op_without_spaces_and_spaces_gpu_with_it(monkeypatch):
    from clip_arena.core.gpu import gpu

    def work(x):
        return x + 1

    monkeypatch.setitem(sys.modules, "spaces", None)  # the package absent
    assert gpu(work) is work
    wrapped = []
    fake = types.SimpleNamespace(GPU=lambda fn: wrapped.append(fn) or (lambda *a: ("on gpu", fn(*a))))
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert gpu(work)(1) == ("on gpu", 2) and wrapped == [work]
