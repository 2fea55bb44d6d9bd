"""What every tab shares: library errors as messages (:func:`friendly`), the image and plot widgets, the
networks diagram and a visitor's session key."""
from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable

import gradio as gr

from gioada.app.finetune import RunInProgress
from gioada.app.plots import CONFIDENCE_COLORS, CONFIDENCE_SERIES, LOSS_COLORS, LOSS_SERIES, curve_frame
from gioada.app.serving import scrub_paths

log = logging.getLogger("gioada.app")

NONE, SCRATCH = ("— none —", ""), ("Scratch (random weights)", "")      # the empty choices of model dropdowns


# ---------------------------------------------------------------------------------------------------
# Errors: the library raises ValueError (bad input) and RunInProgress; the browser gets gr.Error
# messages, never a traceback.
# ---------------------------------------------------------------------------------------------------
def _message(e: Exception) -> gr.Error:
    if isinstance(e, (ValueError, RunInProgress, FileNotFoundError)):
        return gr.Error(scrub_paths(str(e)), print_exception=False)
    log.exception("unexpected error in an app callback")
    return gr.Error("Something went wrong on the server (it has been logged). Please try again.",
                    print_exception=False)


def _check_arguments(fn: Callable, args: tuple, kwargs: dict) -> None:
    """An API call with the wrong number of inputs gets a message naming the inputs expected."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        names = [p for p in inspect.signature(fn).parameters]
        raise gr.Error(f"this endpoint takes {len(names)} inputs ({', '.join(names)}), got {len(args) + len(kwargs)}",
                       print_exception=False) from None


def check_input_count(block_fn: Any, inputs: list[Any]) -> None:
    """Gradio's own check of the number of inputs, with a message an API caller can act on."""
    if len(inputs) != len(block_fn.inputs):
        names = [getattr(b, "label", None) or type(b).__name__ for b in block_fn.inputs]
        raise gr.Error(f"/{block_fn.api_name or block_fn.name} takes {len(names)} inputs ({', '.join(map(str, names))}), "
                       f"got {len(inputs)}", print_exception=False)


def friendly(fn: Callable) -> Callable:
    """Turn library errors into gr.Error messages (works for plain functions and generators)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any):
            _check_arguments(fn, args, kwargs)
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as e:  # noqa: BLE001 - mapped to a message; unexpected ones are logged in full
                raise _message(e) from None
        return gen

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any):
        _check_arguments(fn, args, kwargs)
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - mapped to a message; unexpected ones are logged in full
            raise _message(e) from None
    return call


def diagram_image(*lambdas: float) -> Any:
    """The networks diagram, greyed out where (lam_input, lam_output, lam_depth) switch parts off; the
    defaults' when none are given. Matplotlib is imported when it is first drawn, not when the app starts."""
    from gioada.app import diagram
    return diagram.render(*lambdas)


def session(request: gr.Request | None) -> str:
    """The browser session a lab belongs to (API callers without one share a single lab)."""
    return getattr(request, "session_hash", None) or "anonymous"


def image(label: str, elem_id: str | None = None) -> gr.Image:
    # The library draws each caption into its image: Gradio's label badge would cover these short, wide images.
    # JPEG: about 20× faster to encode than PNG here, and half the bytes to fetch.
    return gr.Image(label=label, show_label=False, interactive=False, format="jpeg", buttons=["fullscreen"],
                    min_width=150, elem_id=elem_id)


def slider(label: str, elem_id: str) -> gr.ImageSlider:
    return gr.ImageSlider(label=label, show_label=False, interactive=False, format="jpeg", buttons=["fullscreen"],
                          min_width=150, elem_id=elem_id, max_height=260)


PLOTS_HELP = ("The curves fill in as training runs. Losses: seg and depth are T's, adv_in is G and T fooling "
              "D_in, adv_out T fooling D_out, content G's content term, G+T their total; D_in and D_out are the "
              "discriminators' own. P(real): G(src) is the translated source; at 50% (chance) a discriminator "
              "can no longer tell the domains apart.")


def curve_plots(losses_id: str, p_real_id: str) -> tuple[gr.LinePlot, gr.LinePlot]:
    """Every loss term, and the discriminators' P(real) with chance (50%) marked: drawn by the browser from a
    few kB of points per refresh (see curve_values), not rendered on the server. Empty (no axes) until a run
    has a step; each label says what will appear."""
    common = dict(x="step", y="value", color="series", height=300, elem_classes="gio-plot")
    return (gr.LinePlot(None, title="Losses (every term)", color_map=LOSS_COLORS, elem_id=losses_id,
                        label="Each loss term per training step (empty until a run's first step)",
                        show_label=True, **common),
            gr.LinePlot(None, color_map=CONFIDENCE_COLORS, title="D's P(real): target vs G(source)", y_lim=[0, 1],
                        label="Each discriminator's P(real) on target images and on translations, chance at 50% "
                              "(empty until a run's first step)", show_label=True, elem_id=p_real_id, **common))


def curve_values(history: list[dict[str, float]]) -> list[Any]:
    """The points of the two plots of :func:`curve_plots` (None, the empty plot, before the first step)."""
    if not history:
        return [None, None]
    return [curve_frame(history, LOSS_SERIES), curve_frame(history, CONFIDENCE_SERIES, chance=True)]
