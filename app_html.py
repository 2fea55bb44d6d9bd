"""The app's HTML: the class legend, and a model's numbers with the discriminators' P(real) bars. The cards
use inline styles (they render the same in any theme); only ``app.py`` imports this module.
"""
from __future__ import annotations

import html
import math

from gioada.classes import VKITTI10, LabelSpace
from gioada.explore import ModelView


def legend_html(space: LabelSpace = VKITTI10) -> str:
    """The classes and their colours, as a row of swatches."""
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin:2px 10px 2px 0;font-size:13px">'
        f'<span style="width:14px;height:14px;border-radius:3px;margin-right:5px;background:rgb{tuple(c)};'
        f'border:1px solid rgba(0,0,0,.25)"></span>{html.escape(n)}</span>'
        for n, c in zip(space.classes, space.colors))
    return f'<div style="display:flex;flex-wrap:wrap;align-items:center">{items}</div>'


def _bar(label: str, p: float | None, color: str) -> str:
    if p is None:
        return ""
    pct = max(0.0, min(100.0, 100 * p))
    return (f'<div style="display:flex;align-items:center;margin:3px 0;font-size:12.5px">'
            f'<span style="width:150px;flex:none">{html.escape(label)}</span>'
            f'<span style="position:relative;flex:1;height:14px;background:#eef0f4;border-radius:7px">'
            f'<span style="position:absolute;left:0;top:0;bottom:0;width:{pct:.1f}%;background:{color};'
            f'border-radius:7px"></span>'
            f'<span style="position:absolute;left:50%;top:-3px;bottom:-3px;border-left:2px dashed #222"></span>'
            f'</span><span style="width:48px;text-align:right;font-variant-numeric:tabular-nums">{pct:.0f}%</span>'
            f'</div>')


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{spec}}{unit}"


def stats_html(view: ModelView) -> str:
    """A card: per-image mIoU and depth error, and each discriminator's P(real) with chance marked."""
    def metric(label: str, value: str, hint: str) -> str:
        return (f'<div style="flex:1;min-width:110px;padding:6px 10px;border-radius:8px;background:#f5f6fa">'
                f'<div style="font-size:11.5px;color:#556">{label}</div>'
                f'<div style="font-size:20px;font-weight:650">{value}</div>'
                f'<div style="font-size:11px;color:#778">{hint}</div></div>')

    metrics = "".join([
        metric("mIoU on target", _fmt(view.miou_target, ".1f", "%"), "this image, real-style"),
        metric("mIoU on source", _fmt(view.miou_source, ".1f", "%"), "same scene, synthetic"),
        metric("depth abs rel", _fmt(view.depth_abs_rel, ".3f"), "target, lower is better"),
    ])
    names = {"source": "source", "translated": "G(source)", "target": "target"}
    bars = "".join(_bar(f"D_in · {names[k]}", p, "#6b7fd7") for k, p in view.d_in.items())
    bars += "".join(_bar(f"D_out · T({names[k]})", p, "#2aa198") for k, p in view.d_out.items())
    notes = "".join(f'<div style="font-size:12px;color:#8a5a00;margin-top:4px">⚠ {html.escape(n)}</div>'
                    for n in view.notes)
    return (f'<div style="display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start">'
            f'<div style="flex:1 1 300px;display:flex;gap:8px;flex-wrap:wrap">{metrics}</div>'
            f'<div style="flex:2 1 420px"><div style="font-size:12px;color:#556;margin-bottom:2px">'
            f'Discriminators: probability "real" — the dashed line is 50%, chance, where adversarial training '
            f'is meant to end</div>{bars}</div></div>{notes}')
