"""The GIO-Ada diagram: the four networks (G, T, D_in, D_out) and which losses flow where, drawn by code.

``draw()`` returns a matplotlib Figure; ``render()`` an RGB array (what the app shows). Parts switched
off by a lambda of 0 are drawn greyed out, so the diagram of "input only" differs from the full method.
``python -m gioada.app.diagram out.png`` writes it to a file.
"""
from __future__ import annotations

import sys
from functools import lru_cache

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..config import ModelConfig

_M = ModelConfig()

_NET = "#3b4cc0"       # networks trained by the generator step
_DISC = "#b40426"      # discriminators
_DATA = "#4a4a4a"      # inputs and outputs
_LOSS = "#1a7f5a"      # losses
_OFF = "#c8c8c8"       # switched off (lambda = 0)


def draw(lam_input: float = _M.lam_input, lam_output: float = _M.lam_output, lam_depth: float = _M.lam_depth) -> Figure:
    """The diagram for these lambdas (0 greys out that part). Uses no global pyplot state."""
    fig = Figure(figsize=(11.0, 6.2), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 22.3)
    ax.set_ylim(0, 12.6)
    ax.axis("off")
    adapt_in, adapt_out, depth = lam_input > 0, lam_output > 0, lam_depth > 0
    g_on = adapt_in or adapt_out

    def box(x: float, y: float, w: float, h: float, text: str, color: str, *, filled: bool = True,
            on: bool = True, size: float = 10.5, weight: str = "bold") -> None:
        c = color if on else _OFF
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.08,rounding_size=0.25",
                                    fc=c if filled else "white", ec=c, lw=2, alpha=0.95 if filled else 1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight,
                color=("white" if filled else c), linespacing=1.3)

    def arrow(a: tuple[float, float], b: tuple[float, float], color: str = _DATA, *, on: bool = True,
              rad: float = 0.0, style: str = "-|>", ls: str = "-", lw: float = 1.6, label: str = "",
              lx: float = 0.0, ly: float = 0.0) -> None:
        c = color if on else _OFF
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=13, color=c, lw=lw, ls=ls,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))
        if label:
            ax.text((a[0] + b[0]) / 2 + lx, (a[1] + b[1]) / 2 + ly, label, fontsize=8.5, color=c,
                    ha="center", va="center", style="italic")

    # Inputs (left): the target image on top, the labelled source below.
    box(0.2, 10.0, 3.4, 1.4, "target image x_t\n(real, no labels)", _DATA, filled=False, size=9.5)
    box(0.2, 5.0, 3.4, 1.4, "source image x_s\n(synthetic)", _DATA, filled=False, size=9.5)
    box(0.2, 2.9, 3.4, 1.4, "labels y_s\n+ depth d_s", _DATA, filled=False, size=9.5)

    # G: source image + labels + depth -> translated image x~_s.
    box(4.7, 3.6, 2.7, 2.2, "G\nimage\ntransform", _NET, on=g_on, size=10)
    arrow((3.6, 5.7), (4.7, 5.1), on=g_on)
    arrow((3.6, 3.6), (4.7, 4.3), on=g_on, label="" if depth else "labels only", ly=-0.5)
    ax.text(9.6, 3.45, "x̃_s = G(x_s, y_s, d_s)" if depth else "x̃_s = G(x_s, y_s)", fontsize=9,
            color=_DATA if g_on else _OFF, ha="center")
    if not g_on:
        ax.text(6.05, 3.1, "bypassed: x̃_s = x_s", fontsize=8.5, color="#888", ha="center", style="italic")

    # D_in sits between the two images it compares.
    box(8.3, 6.9, 2.4, 1.5, "D_in", _DISC, on=adapt_in, size=11)
    arrow((3.6, 10.4), (9.1, 8.4), _DISC, on=adapt_in, ls="--", label="real", lx=0.2, ly=0.5)
    arrow((7.4, 5.5), (9.1, 6.9), _DISC, on=adapt_in, label="fake", lx=-0.6, ly=0.15)
    box(3.9, 7.15, 3.5, 1.0, "λ_in · L_adv_in", _LOSS, on=adapt_in, filled=False, size=9.5, weight="normal")
    arrow((8.3, 7.65), (7.4, 7.65), _LOSS, on=adapt_in)

    # T: one task network, on translated source images and on target images.
    box(12.6, 4.6, 2.9, 3.2, "T\ntask network\n(shared)", _NET, size=10)
    arrow((3.6, 10.9), (14.0, 7.8), rad=-0.18)
    arrow((7.4, 4.2), (12.6, 5.0), rad=0.05)

    # D_out judges T's outputs (class probabilities + depth).
    box(17.6, 7.9, 2.4, 1.5, "D_out", _DISC, on=adapt_out, size=11)
    arrow((15.5, 7.2), (17.6, 8.3), _DISC, on=adapt_out, label="T(x̃_s): fake", lx=0.35, ly=-0.45)
    arrow((15.0, 7.8), (18.2, 9.4), _DISC, on=adapt_out, rad=-0.35, ls="--", label="T(x_t): real", lx=-0.9, ly=1.0)
    box(16.6, 10.3, 5.4, 1.1, "λ_out · L_adv_out", _LOSS, on=adapt_out, filled=False, size=9.5, weight="normal")
    arrow((19.6, 9.4), (19.6, 10.3), _LOSS, on=adapt_out)
    ax.text(20.2, 7.5, "seg" + (" + depth" if depth else ""), fontsize=8.5, color=_DISC if adapt_out else _OFF,
            ha="center", style="italic")

    # The supervised loss, on translated source images only (target labels are never used).
    box(16.6, 3.4, 5.4, 1.8, "L_seg(T(x̃_s), y_s)\n" + ("+ λ_depth · L_depth(T(x̃_s), d_s)" if depth
                                                          else "(λ_depth = 0: no depth loss)"),
        _LOSS, filled=False, size=9.2, weight="normal")
    arrow((15.5, 5.4), (16.6, 4.6), _LOSS)
    arrow((2.0, 2.9), (19.3, 3.4), _LOSS, rad=0.12, ls=":", lw=1.3, label="ground truth", lx=6.0, ly=-1.15)

    # How the two steps use the losses.
    ax.text(0.3, 1.05, "Each training step:  1. D step — D_in and D_out learn real → 1, translated → 0.   "
            "2. G step — G and T minimise L_seg + λ_depth·L_depth + λ_in·L_adv_in + λ_out·L_adv_out,",
            fontsize=8.8, color="#222")
    ax.text(0.3, 0.55, "with flipped labels in the adversarial terms (fool the discriminators). "
            "Training converges when both discriminators say 50% (chance).", fontsize=8.8, color="#222")

    # Key.
    for i, (c, t) in enumerate([(_NET, "trained in the G step"), (_DISC, "trained in the D step"),
                                (_LOSS, "losses"), (_OFF, "off (λ = 0)")]):
        ax.add_patch(FancyBboxPatch((0.4 + i * 3.3, 12.0), 0.35, 0.35, boxstyle="round,pad=0.02", fc=c, ec=c))
        ax.text(0.9 + i * 3.3, 12.17, t, fontsize=8.5, va="center", color="#333")
    return fig


@lru_cache(maxsize=16)
def render(lam_input: float = _M.lam_input, lam_output: float = _M.lam_output,
           lam_depth: float = _M.lam_depth) -> np.ndarray:
    """The diagram as an H×W×3 uint8 image (cached per lambda setting)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = draw(lam_input, lam_output, lam_depth)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0] if argv else "gioada_diagram.png"
    draw().savefig(out, dpi=150)
    print(out)


if __name__ == "__main__":
    main()
