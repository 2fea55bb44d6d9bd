"""The app's HTML: the banner, the class legend, a model's numbers with the discriminators' P(real) bars,
and a fine-tuning run's progress and before/after result. The banner and the idle progress line use the
classes of ``app.CSS`` (``gio-hero``, ``gio-pill``, ``gio-progress``), the cards inline styles (they render
the same in any theme); only the tabs (``gioada.app.ui``) and ``app.py`` import this module.
"""
from __future__ import annotations

import html
import math

from gioada.app.explore import ModelView
from gioada.app.finetune import Snapshot
from gioada.app.lab import LabView
from gioada.classes import VKITTI10, LabelSpace


def hero_html(n_shipped: int, of: int, scenes_kind: str, device_type: str | None = None) -> str:
    """The banner: what the lab is, how many shipped models are installed (``n_shipped`` of ``of``), the scenes
    and (once known) the device."""
    where = "simulator scenes" if scenes_kind == "sim" else "datasets on disk"
    return ('<div class="gio-hero"><h1>GIO-Ada lab</h1>'
            '<p>Segmentation learned from synthetic driving scenes — with free labels and depth — adapted to '
            'real-style images whose labels it never sees. Explore the domain gap, watch the discriminators, '
            'fine-tune with the lambdas, and learn how the four networks fit together.</p>'
            f'<span class="gio-pill">{n_shipped} of {of} shipped models installed</span>'
            f'<span class="gio-pill">{where}</span>'
            + (f'<span class="gio-pill">{"GPU" if device_type == "cuda" else "CPU"}</span>' if device_type else "")
            + '</div>')


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
        metric("mIoU on target, this scene", _fmt(view.miou_target, ".1f", "%"),
               "1 real-style image, not the table's held-out set"),
        metric("mIoU on source, this scene", _fmt(view.miou_source, ".1f", "%"), "the same scene, synthetic"),
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


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "…"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def progress_html(snap: Snapshot | None) -> str:
    """A progress bar with steps/s and time left, and the run's current message."""
    if snap is None:
        return ('<div class="gio-progress idle">No run yet. Choose settings and press <b>Start fine-tuning</b>.'
                '</div>')
    pct = 100 * snap.step / max(snap.total, 1)
    color = {"done": "#1a7f5a", "stopped": "#b07d00", "diverged": "#b40426", "oom": "#b40426",
             "failed": "#b40426"}.get(snap.state, "#4f46e5")
    rate = f"{snap.steps_per_second:.2f} steps/s" if snap.steps_per_second else "measuring speed…"
    left = f"about {_duration(snap.eta_seconds)} left" if snap.eta_seconds is not None else ""
    bits = [f"step <b>{snap.step}</b> / {snap.total}", rate, left, f"elapsed {_duration(snap.elapsed)}"]
    return (f'<div style="font-size:13.5px">'
            f'<div style="display:flex;justify-content:space-between;margin-bottom:4px">'
            f'<span><b>{snap.run_name}</b> · {snap.state}</span><span>{pct:.0f}%</span></div>'
            f'<div style="height:14px;background:#e8eaf2;border-radius:7px;overflow:hidden">'
            f'<div style="height:100%;width:{pct:.1f}%;background:{color}"></div></div>'
            f'<div style="margin-top:5px;color:#445">{" · ".join(b for b in bits if b)}</div>'
            f'<div style="margin-top:6px;color:{color if snap.finished else "#334"}">{html.escape(snap.message)}</div>'
            + (f'<div class="gio-warning" style="margin-top:6px;color:#b40426">{html.escape(snap.warning)}</div>'
               if snap.warning else '') +
            '</div>')


def result_html(snap: Snapshot | None) -> str:
    """Target mIoU and depth error before vs after the run (empty until the run has them)."""
    if snap is None or not snap.before:
        return ""
    b = snap.before
    if not snap.after:
        return (f'<div style="font-size:14px">Before training: target mIoU <b>{b["miou"]:.1f}%</b> on '
                f'{b["scenes"]} held-out target scenes.</div>')
    a = snap.after
    delta = a["miou"] - b["miou"]
    sign = "+" if delta >= 0 else "−"
    color = "#1a7f5a" if delta >= 0 else "#b40426"
    depth = ""
    if "depth" in a and "depth" in b:
        bd, ad = b["depth"], a["depth"]
        depth = (f'<div style="font-size:13px;color:#445">depth abs rel {bd["abs_rel"]:.3f} → {ad["abs_rel"]:.3f}'
                 f' · δ&lt;1.25 {bd["delta1"]:.2f} → {ad["delta1"]:.2f}</div>')
    return (f'<div style="display:flex;align-items:baseline;gap:14px;flex-wrap:wrap">'
            f'<div style="font-size:13px;color:#445">Target mIoU on {a["scenes"]} held-out scenes</div>'
            f'<div style="font-size:26px;font-weight:700">{b["miou"]:.1f}% → {a["miou"]:.1f}%</div>'
            f'<div style="font-size:16px;font-weight:650;color:{color}">{sign}{abs(delta):.1f} points</div></div>'
            f'{depth}')


def lab_html(view: LabView) -> str:
    """The live lab's card: its plain-language status, the last action, and the four P(real) bars (50% marked)."""
    colors = {"D_in": "#6b7fd7", "D_out": "#2aa198"}
    bars = "".join(_bar(name, p, colors[name.split(" ")[0]]) for name, p in view.p_real.items())
    notes = "".join(f'<div style="font-size:12px;color:#8a5a00;margin-top:4px">⚠ {html.escape(n)}</div>'
                    for n in view.notes)
    moved = ("G's translation did not change" if view.translation_change == 0 else
             f"G's translation moved by {view.translation_change:.2f} grey levels on average")
    return (f'<div id="lab-card" data-steps="{view.steps}" data-d="{view.d_steps}" data-g="{view.g_steps}" '
            f'data-change="{view.translation_change:.4f}" '
            + "".join(f'data-{k.split(" ")[0].lower().replace("_", "")}-{"fake" if "G(" in k else "real"}='
                      f'"{p:.6f}" ' for k, p in view.p_real.items())
            + f'style="font-size:13.5px"><div style="font-size:15px;font-weight:650;margin-bottom:4px" '
            f'id="lab-status">{html.escape(view.status)}</div>'
            f'<div style="color:#445;margin-bottom:6px">Step <b>{view.steps}</b> ({view.d_steps} D steps, '
            f'{view.g_steps} G steps) · {html.escape(view.last)} · {moved}.</div>'
            f'<div style="font-size:12px;color:#556;margin-bottom:2px">Probability "real" on the fixed scene — '
            f'the dashed line is 50%, chance</div>{bars}{notes}</div>')
