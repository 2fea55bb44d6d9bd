"""Matplotlib figures of a run's logged history: every loss term, and the discriminators' P(real).

``history`` is one dict per step: ``"step"`` and the logged ``"train/..."`` values. Figures are built
without pyplot, so drawing them from worker threads shares no global state.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

LOSS_SERIES = {
    "train/g_seg": "seg (T)", "train/g_depth": "depth (T)", "train/g_adv_in": "adv_in (G, T fool D_in)",
    "train/g_adv_out": "adv_out (T fools D_out)", "train/g_total": "G+T total",
    "train/loss_d_in": "D_in loss", "train/loss_d_out": "D_out loss",
}
CONFIDENCE_SERIES = {
    "train/d_in_real": "D_in · real target", "train/d_in_fake": "D_in · translated",
    "train/d_out_real": "D_out · real target", "train/d_out_fake": "D_out · translated",
}


def curves(history: list[dict[str, float]], series: dict[str, str],
           max_points: int = 250) -> dict[str, tuple[list[int], list[float]]]:
    """{series name: (steps, values)} for the logged keys in ``series``, thinned to about ``max_points`` steps."""
    stride = max(1, math.ceil(len(history) / max_points))
    rows = history[::stride] + ([history[-1]] if history and (len(history) - 1) % stride else [])
    out: dict[str, tuple[list[int], list[float]]] = {}
    for key, name in series.items():
        points = [(r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key])]
        if points:
            out[name] = ([p[0] for p in points], [p[1] for p in points])
    return out


def _axes(title: str, ylabel: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(6.0, 3.9), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def loss_figure(history: list[dict[str, float]]) -> Figure:
    """Every loss term over the steps (matplotlib Figure; no pyplot state)."""
    fig, ax = _axes("Losses (every term)", "loss")
    for (name, (x, y)), color in zip(curves(history, LOSS_SERIES).items(), _COLORS):
        ax.plot(x, y, label=name, lw=1.6 if "total" in name else 1.2, color=color,
                ls="--" if name.startswith("D_") else "-")
    if ax.lines:
        ax.legend(fontsize=8, ncols=3, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    else:
        ax.text(0.5, 0.5, "waiting for the first step…", ha="center", va="center", transform=ax.transAxes,
                color="#889")
    return fig


def confidence_figure(history: list[dict[str, float]]) -> Figure:
    """The discriminators' mean P(real) on real and on translated inputs, with chance (50%) marked."""
    fig, ax = _axes("Discriminators: P(real), real vs translated", "P(real)")
    ax.set_ylim(0, 1)
    ax.axhline(0.5, color="#222", ls=":", lw=1.2)
    ax.text(0.01, 0.515, "chance (50%): where training should end", transform=ax.get_yaxis_transform(),
            fontsize=7.5, color="#222")
    styles = {"D_in · real target": ("#4f46e5", "-"), "D_in · translated": ("#4f46e5", "--"),
              "D_out · real target": ("#0f766e", "-"), "D_out · translated": ("#0f766e", "--")}
    for name, (x, y) in curves(history, CONFIDENCE_SERIES).items():
        color, ls = styles[name]
        ax.plot(x, y, label=name, color=color, ls=ls, lw=1.4)
    if ax.lines[1:]:
        ax.legend(fontsize=8, ncols=2, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    elif history:
        ax.text(0.5, 0.25, "no discriminators in this run (λ_in = λ_out = 0)", ha="center", transform=ax.transAxes,
                color="#889")
    return fig


_COLORS = ["#4f46e5", "#0f766e", "#d97706", "#db2777", "#111827", "#b40426", "#7c3aed"]


def curve_frame(history: list[dict[str, float]], series: dict[str, str], max_points: int = 200) -> pd.DataFrame:
    """The logged ``series`` as one long table (step, value, series) for a browser-drawn ``gr.LinePlot``:
    a few kB per refresh, drawn by the browser, instead of a figure rendered on the server."""
    rows = [(s, v, name) for name, (steps, values) in curves(history, series, max_points).items()
            for s, v in zip(steps, values)]
    return pd.DataFrame(rows, columns=["step", "value", "series"])


LOSS_COLORS = dict(zip(LOSS_SERIES.values(), _COLORS))
CONFIDENCE_COLORS = {"D_in · real target": "#4f46e5", "D_in · translated": "#a5b4fc",
                     "D_out · real target": "#0f766e", "D_out · translated": "#5eead4"}
