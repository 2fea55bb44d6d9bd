"""Runs on disk: ``model.safetensors`` + ``config.json`` (+ ``metrics.json``, ``run.json``, ``log.csv``).

Weights are safetensors only, so loading a run never unpickles anything. A run folder is written
under a temporary name (``.<name>.<random>.tmp``, marked with the writing process's id) and renamed into
place, so a killed process never leaves half a run; :func:`clean_stale_temporaries` removes what a killed
save left behind.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import RunConfig

if TYPE_CHECKING:   # GIOAda imports Lightning: loaded where a model is built
    import torch

    from .module import GIOAda

WEIGHTS, CONFIG, METRICS, RUN_INFO, LOG = "model.safetensors", "config.json", "metrics.json", "run.json", "log.csv"
PARTIAL = ".gioada-partial"              # inside a temporary run folder: {"pid", "host"} of the process writing it
_TEMPORARY = re.compile(r"^\.([a-z0-9][a-z0-9._-]*)\.[A-Za-z0-9_]+\.tmp$")   # save_run's mkdtemp names
_OLD = re.compile(r"^\.([a-z0-9][a-z0-9._-]*)\.old$")                         # a run being replaced


def is_run_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / WEIGHTS).is_file() and (p / CONFIG).is_file()


def build_model(cfg: RunConfig) -> GIOAda:
    """A fresh GIOAda from ``cfg.model`` (its OneCycle already sized to ``cfg.steps``); frames larger than
    its training crop ``cfg.data.crop`` are predicted window by window (``GIOAda.forward``)."""
    from .module import GIOAda
    model = GIOAda(**dataclasses.asdict(cfg.model))
    model.window = cfg.data.window
    return model


def save_run(out_dir: str | Path, model: GIOAda, cfg: RunConfig, *, metrics: dict[str, Any] | None = None,
             info: dict[str, Any] | None = None, log_csv: str | Path | None = None, half: bool = False,
             overwrite: bool = False) -> Path:
    """Write a run folder atomically and return its path.

    Args:
        half: store weights as float16 (half the size; loading casts back to float32).
        overwrite: replace an existing run folder; otherwise an existing folder is an error.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another output folder (nothing was overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        (tmp / PARTIAL).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        from safetensors.torch import save_file  # imports torch: only where weights are written or read
        state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
                 for k, v in model.state_dict().items() if not k.startswith("val_")}
        save_file(state, str(tmp / WEIGHTS))
        cfg.save(tmp / CONFIG)
        for name, payload in ((METRICS, metrics), (RUN_INFO, info)):
            if payload is not None:
                (tmp / name).write_text(json.dumps(payload, indent=2) + "\n")
        if log_csv is not None and Path(log_csv).is_file():
            shutil.copyfile(log_csv, tmp / LOG)
        (tmp / PARTIAL).unlink()
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def clean_stale_temporaries(runs_dir: str | Path) -> list[str]:
    """Remove what a killed :func:`save_run` left in ``runs_dir``; returns the names removed or restored.

    Only folders save_run made are touched: a ``.<name>.<random>.tmp`` holding the :data:`PARTIAL` mark of
    a process that is no longer running (a save in progress, here or in another process, is left alone),
    and a ``.<name>.old`` run that was being replaced (removed when ``<name>`` is in place, else put back).
    """
    runs_dir = Path(runs_dir)
    done: list[str] = []
    if not runs_dir.is_dir():
        return done
    for p in runs_dir.iterdir():
        if not p.is_dir() or p.is_symlink():
            continue
        if _TEMPORARY.match(p.name) and (p / PARTIAL).is_file() and not _writer_alive(p / PARTIAL):
            shutil.rmtree(p, ignore_errors=True)
            done.append(p.name)
        elif (m := _OLD.match(p.name)) and is_run_dir(p):
            final = runs_dir / m.group(1)
            if is_run_dir(final):
                shutil.rmtree(p, ignore_errors=True)
            elif not final.exists():
                os.replace(p, final)
            done.append(p.name)
    return done


def _writer_alive(mark: Path) -> bool:
    """Is the process that wrote ``mark`` still running (so its save may be in progress)?"""
    try:
        who = json.loads(mark.read_text())
        pid, host = int(who["pid"]), str(who["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False                                  # a mark cut short by the kill itself
    if host != socket.gethostname():
        return True                                   # another machine's save (a shared folder): not ours to judge
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_run_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a gioada run: {CONFIG} is missing")
    d = json.loads(path.read_text())
    if not isinstance(d, dict):
        kind = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(d), "null")
        raise ValueError(f"{CONFIG} holds a JSON {kind}, not an object with 'model', 'data' and "
                         f"'steps' (train again, or restore the run's {CONFIG})")
    model = d.get("model")
    if isinstance(model, dict) and "transform_depth" not in model and model.get("lam_depth") == 0:
        # Written before geometry's three uses had their own switches: lam_depth = 0 meant all three off.
        model |= {"transform_depth": False, "output_disc_depth": False}
    return RunConfig.from_dict(d)


def load_model(run_dir: str | Path, map_location: str | torch.device = "cpu") -> GIOAda:
    """Rebuild a run's GIOAda from its config and safetensors weights (float32, eval mode)."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise FileNotFoundError(f"{run_dir} is not a gioada run: expected {WEIGHTS} and {CONFIG} inside it")
    cfg = load_run_config(run_dir)
    # The weights file holds the whole backbone, so no separate pretrained file is needed to load.
    model = build_model(dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pretrained_backbone=False)))
    load_weights(model, run_dir / WEIGHTS)
    return model.to(map_location).eval()


def load_weights(model: GIOAda, path: str | Path) -> None:
    """Load a safetensors state dict into ``model``; shapes must match exactly."""
    from safetensors.torch import load_file
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt/non-safetensors files
        raise ValueError(f"{path} is not a valid safetensors file ({e}); gioada never loads pickled weights") from e
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("val_")}
    missing, unexpected = set(own) - set(state), set(state) - set(own)
    if missing or unexpected:
        raise ValueError(f"{path} does not fit this model: {len(missing)} missing tensors "
                         f"(e.g. {sorted(missing)[:2]}), {len(unexpected)} unexpected (e.g. {sorted(unexpected)[:2]})")
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise ValueError(f"{path}: tensor {k} has shape {tuple(v.shape)}, the model expects {tuple(own[k].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)


def read_json(run_dir: str | Path, name: str) -> dict[str, Any]:
    path = Path(run_dir) / name
    return json.loads(path.read_text()) if path.is_file() else {}
