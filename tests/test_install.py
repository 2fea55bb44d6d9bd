"""The package as a user installs it: a wheel built from this tree, installed into a fresh virtualenv.

The wheel must carry the shipped models, so ``load_pretrained`` works far from any checkout, and install
the ``gioada`` console script. The fresh venv borrows this venv's dependencies (torch and the rest) through
a ``.pth`` line, so nothing is downloaded; gioada itself comes only from the wheel.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow     # `make test-fast` leaves it out; `make test` runs it

ROOT = Path(__file__).resolve().parent.parent


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a fresh venv that has the wheel of this tree installed."""
    if not (ROOT / "assets" / "gioada" / "model.safetensors").is_file():
        pytest.skip("the shipped models are not in this checkout")
    tmp = tmp_path_factory.mktemp("install")
    # Build from a copy, so the build's egg-info/ and build/ never land in the working tree.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "gioada", src / "gioada", ignore=ignore)
    shutil.copytree(ROOT / "assets", src / "assets", ignore=ignore)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", src,
         cwd=tmp)
    wheel = next((tmp / "dist").glob("gioada-*.whl"))

    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")   # torch & co. from this venv
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp)
    return python


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GIOADA_ASSETS", "PYTHONPATH")}
    return env


def test_the_wheel_loads_the_shipped_models_far_from_the_checkout(installed, tmp_path):
    code = ("import json, gioada, gioada.pretrained as p; m = p.load_pretrained('gioada'); "
            "print(json.dumps([gioada.__file__, str(p.ASSETS), p.available(), m.hparams.num_classes]))")
    where, assets, available, classes = json.loads(_run(installed, "-I", "-c", code, cwd=tmp_path, env=_clean_env()))
    venv = installed.parent.parent
    assert Path(where).is_relative_to(venv) and Path(assets).is_relative_to(venv), (where, assets)
    assert available == ["source-only", "input-only", "output-only", "no-depth", "gioada", "gioada-content", "oracle",
                         "gioada-seed1"]
    assert classes == 10


def test_the_wheel_carries_every_package_and_the_imagenet_encoder(installed, tmp_path):
    packages = sorted(".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gioada").rglob("__init__.py"))
    code = ("import importlib, torch; from gioada.networks.task import TaskNetwork; "
            f"[importlib.import_module(name) for name in {packages!r}]; "
            "net = TaskNetwork(3, 10, True, encoder='efficientnet-lite0'); "
            "print(float(net.backbone.stem[0].weight.double().sum()), float(net.backbone.stem[1].running_var.sum()))")
    loaded = [float(x) for x in _run(installed, "-I", "-c", code, cwd=tmp_path, env=_clean_env()).split()]
    from safetensors.torch import load_file
    shipped = load_file(ROOT / "assets" / "backbones" / "efficientnet-lite0.safetensors")   # the same numbers
    assert loaded == pytest.approx([float(shipped["stem.0.weight"].double().sum()),
                                    float(shipped["stem.1.running_var"].float().sum())], rel=1e-6)


def test_gioada_assets_overrides_where_models_are_found(installed, tmp_path):
    shutil.copytree(ROOT / "assets" / "oracle", tmp_path / "mine" / "oracle")
    code = "import gioada.pretrained as p; print(p.available())"
    out = _run(installed, "-I", "-c", code, cwd=tmp_path, env={**_clean_env(), "GIOADA_ASSETS": str(tmp_path / "mine")})
    assert out.strip() == "['oracle']"


def test_the_console_script_is_the_cli(installed, tmp_path):
    out = _run(installed.parent / "gioada", "render", "--help", cwd=tmp_path, env=_clean_env())
    assert "render simulator scenes" in _run(installed.parent / "gioada", "--help", cwd=tmp_path, env=_clean_env())
    assert "--out" in out
