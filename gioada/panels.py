"""Images composed for display: captions, tile rows, nearest-neighbour upscaling, depth with a scale bar,
and the discriminator's confidence panel. Inputs and outputs are H×W×3 uint8 arrays unless stated.
"""
from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .classes import LabelSpace
from .constants import FAR_DEPTH
from .data.synthetic import tensor_to_image
from .viz import colorize_confidence, colorize_depth, palette

if TYPE_CHECKING:
    import torch

DISPLAY_WIDTH = 384                      # images are upscaled (nearest) to about this width for display



# Text is the slowest part of drawing a panel (PIL renders each string's glyphs, about 0.4 ms each), and most
# of it repeats from click to click: fonts, caption bands and the colour keys are drawn once and cached.
@functools.lru_cache(maxsize=None)
def font(size: int) -> ImageFont.ImageFont:
    """PIL's bundled font at ``size`` px (no system fonts needed)."""
    return ImageFont.load_default(size=size)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False            # cached: shared by every caller
    return a


@functools.lru_cache(maxsize=256)
def _caption_band(width: int, text: str) -> np.ndarray:
    band = Image.new("RGB", (width, 26), (255, 255, 255))
    ImageDraw.Draw(band).text((4, 4), text, fill=(30, 34, 48), font=font(16))
    return _frozen(np.asarray(band))


def captioned(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with a white caption band on top (the app shows images without separate labels)."""
    return np.concatenate([_caption_band(image.shape[1], text), image], axis=0)


def label_box(image: Image.Image, text: str, size: int = 13) -> Image.Image:
    """Write ``text`` in a white box at the top left of ``image`` (in place) and return it."""
    draw, f = ImageDraw.Draw(image), font(size)
    box = draw.textbbox((6, 4), text, font=f)
    draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill=(255, 255, 255))
    draw.text((6, 4), text, fill=(20, 20, 20), font=f)
    return image


def tile_row(tiles: Sequence[tuple[np.ndarray, str]], scale: int = 2) -> np.ndarray:
    """Images H×W×3 side by side, each upscaled by ``scale`` with its caption boxed at the top left."""
    out = []
    for image, text in tiles:
        out += [np.asarray(label_box(Image.fromarray(upscale(image, scale)), text)),
                np.full((image.shape[0] * scale, 4, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=1)


def display_scale(width: int) -> int:
    return max(1, round(DISPLAY_WIDTH / width))


def upscale(image: np.ndarray, scale: int | None = None) -> np.ndarray:
    """Nearest-neighbour upscale to about ``DISPLAY_WIDTH``: small renders stay crisp in the browser."""
    s = display_scale(image.shape[1]) if scale is None else scale
    return image if s == 1 else np.repeat(np.repeat(image, s, axis=0), s, axis=1)


def depth_with_scale(depth: np.ndarray, max_depth: float = FAR_DEPTH) -> np.ndarray:
    """Depth H×W metres -> a coloured image with a log-scale bar (in metres) underneath."""
    image = upscale(colorize_depth(depth, max_depth))
    return np.concatenate([image, _depth_scale(image.shape[1], max_depth)], axis=0)


@functools.lru_cache(maxsize=16)
def _depth_scale(w: int, max_depth: float) -> np.ndarray:
    """The log-scale bar of :func:`depth_with_scale`, ``w`` pixels wide, 32 high."""
    ticks = [d for d in (1, 2, 5, 10, 20, 40, 80, 160) if d <= max_depth]
    t = np.linspace(0, 1, w)
    bar = colorize_depth(np.exp(t * np.log(max_depth))[None].repeat(10, 0), max_depth)
    strip = Image.new("RGB", (w, 32), (255, 255, 255))
    strip.paste(Image.fromarray(bar), (0, 2))
    draw, f = ImageDraw.Draw(strip), font(13)
    for d in ticks:
        x = int(round(np.log(d) / np.log(max_depth) * (w - 1)))
        draw.line([(x, 12), (x, 15)], fill=(40, 40, 40))
        label = f"{d} m" if d == ticks[-1] else str(d)
        tw = draw.textlength(label, font=f)
        draw.text((min(max(0, x - tw / 2), w - tw), 16), label, fill=(40, 40, 40), font=f)
    return _frozen(np.asarray(strip))


def confidence_panel(tiles: Sequence[tuple[np.ndarray, torch.Tensor, str]]) -> np.ndarray:
    """Per-location P(real) maps blended over their images, stacked, with a fake / chance / real key.

    ``tiles``: (map H×W in [0, 1], image 3×H×W in [-1, 1], caption). Blue = "real", red = "fake",
    white = 50%, where a perfectly fooled discriminator sits.
    """
    rows = []
    for prob, image, caption in tiles:
        grey = tensor_to_image(image).mean(axis=2, keepdims=True)
        blend = (0.35 * grey + 0.65 * colorize_confidence(prob)).round().astype(np.uint8)
        rows.append(np.asarray(label_box(Image.fromarray(upscale(blend)), caption, 14)))
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    out = []
    for r in rows:
        out += [r, gap]
    return np.concatenate(out + [_confidence_key(rows[0].shape[1])], axis=0)


@functools.lru_cache(maxsize=16)
def _confidence_key(w: int) -> np.ndarray:
    """The fake / chance / real key under :func:`confidence_panel`, ``w`` pixels wide."""
    key = Image.new("RGB", (w, 30), (255, 255, 255))
    key.paste(Image.fromarray(colorize_confidence(np.linspace(0, 1, w)[None].repeat(10, 0))), (0, 2))
    draw, f = ImageDraw.Draw(key), font(13)
    draw.line([(w // 2, 0), (w // 2, 14)], fill=(0, 0, 0), width=2)
    draw.text((2, 14), "fake (0%)", fill=(40, 40, 40), font=f)
    label = "50% = chance"
    draw.text((w // 2 - draw.textlength(label, font=f) / 2, 14), label, fill=(0, 0, 0), font=f)
    draw.text((w - draw.textlength("real (100%)", font=f) - 2, 14), "real (100%)", fill=(40, 40, 40), font=f)
    return _frozen(np.asarray(key))


def strip(tiles: Sequence[tuple[np.ndarray, str]], gap: int = 6) -> np.ndarray:
    """Captioned images side by side, top-aligned on a white background: one image to send instead of several."""
    images = [captioned(image, text) for image, text in tiles]
    h = max(im.shape[0] for im in images)
    out = []
    for im in images:
        out += [np.pad(im, ((0, h - im.shape[0]), (0, 0), (0, 0)), constant_values=255),
                np.full((h, gap, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=1)


def label_png(labels: np.ndarray, space: LabelSpace) -> bytes:
    """A class map H×W as an indexed (palette) PNG: pixel values are class indices, colours the classes'.
    zlib's fastest level: at 128×384, 0.1 ms instead of 0.4 at the default level, the file 1 KB larger."""
    im = Image.fromarray(np.asarray(labels, np.uint8), mode="P")
    im.putpalette(palette(space).reshape(-1).tolist())
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def depth_png(depth: np.ndarray) -> bytes:
    """Depth H×W in metres as a 16-bit grey PNG in centimetres (0 .. 655.35 m), at zlib's fastest level (at
    128×384, 2 ms instead of 10, the file 7% larger: Explore writes both PNGs of every new view)."""
    cm = np.clip(np.round(np.asarray(depth, np.float64) * 100), 0, 65535).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(cm).save(buf, "PNG", compress_level=1)
    return buf.getvalue()
