"""A run's logged history as tables for the browser's line plots: every loss term, and the discriminators'
P(real) with chance (50%) marked.

``history`` is one dict per step: ``"step"`` and the logged ``"train/..."`` values. The app draws these
tables with ``gr.LinePlot``: a few kB per refresh, drawn by the browser, nothing rendered on the server.
"""
from __future__ import annotations

import math

import pandas as pd

LOSS_SERIES = {
    "train/g_seg": "seg", "train/g_depth": "depth", "train/g_adv_in": "adv_in",
    "train/g_adv_out": "adv_out", "train/g_content": "content", "train/g_total": "G+T",
    "train/loss_d_in": "D_in", "train/loss_d_out": "D_out",
}
CONFIDENCE_SERIES = {
    "train/d_in_real": "D_in · target", "train/d_in_fake": "D_in · G(src)",
    "train/d_out_real": "D_out · target", "train/d_out_fake": "D_out · G(src)",
}
CHANCE = "chance (50%)"
LOSS_COLORS = dict(zip(LOSS_SERIES.values(), ["#4f46e5", "#0f766e", "#d97706", "#db2777", "#65a30d", "#111827",
                                              "#b40426", "#7c3aed"]))
CONFIDENCE_COLORS = {"D_in · target": "#4f46e5", "D_in · G(src)": "#a5b4fc",
                     "D_out · target": "#0f766e", "D_out · G(src)": "#5eead4", CHANCE: "#9ca3af"}


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


def curve_frame(history: list[dict[str, float]], series: dict[str, str], max_points: int = 200, *,
                chance: bool = False) -> pd.DataFrame:
    """The logged ``series`` as one long table (step, value, series) for a browser-drawn ``gr.LinePlot``;
    ``chance`` adds a flat :data:`CHANCE` line at 0.5 across the steps drawn (for probabilities).

    Every series has a row, one NaN (not drawn) while it has no points: a browser plot keeps the legend, the
    colours and the axis types of the first table it draws, and a run's terms appear as it goes."""
    rows = [(s, v, name) for name, (steps, values) in curves(history, series, max_points).items()
            for s, v in zip(steps, values)]
    first, last = (min(r[0] for r in rows), max(r[0] for r in rows)) if rows else (0, 0)
    if chance and rows:
        rows += [(first, 0.5, CHANCE), (last, 0.5, CHANCE)]
    drawn = {r[2] for r in rows}
    rows += [(first, math.nan, name) for name in [*series.values(), *([CHANCE] if chance else [])]
             if name not in drawn]              # a NaN inside a drawn series would break its line
    return pd.DataFrame(rows, columns=["step", "value", "series"]).astype({"step": "int64", "value": "float64"})
