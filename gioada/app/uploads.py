"""Uploaded photos: decoding untrusted files under a pixel budget, and cropping them to a model's size.

:func:`load_upload` turns any readable image file into an upright H×W×3 uint8 RGB array, or refuses it
with a ValueError that says why; :func:`fit_to` centre-crops and resizes it to the models' H×W.

Only the formats in :data:`ACCEPTED` are ever decoded (Pillow would hand EPS/PS to Ghostscript, an external
program), and every upload is downscaled in the mode it was decoded in, before any conversion, so the
memory an upload costs is the decoded image plus a small working copy (about 200 MB at the most).
"""
from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Upload limits. Decoding is where a small file can cost a lot of memory ("decompression bomb"), so the
# pixel count is checked from the header before anything is decoded.
MAX_UPLOAD_BYTES = 20 * 2**20
MAX_DECODE_PIXELS = 50_000_000           # at most ~200 MB once decoded as RGBA
MAX_HEADER_PIXELS = 1_000_000_000        # JPEGs above MAX_DECODE_PIXELS are decoded at 1/2..1/8 scale (draft)
WORK_PIXELS = 2_000_000                  # uploads are downscaled to this before anything else
MIN_SIDE = 16
# Formats decoded by Pillow's own code. "JPEG" includes MPO (a camera's JPEG with a second image).
ACCEPTED = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
ACCEPTED_TEXT = "PNG, JPEG, WebP, GIF, BMP or TIFF"


def load_upload(data: bytes | str | Path, *, max_bytes: int = MAX_UPLOAD_BYTES) -> np.ndarray:
    """An uploaded file -> an upright H×W×3 uint8 RGB image of at most ``WORK_PIXELS`` pixels (see
    :func:`read_upload`, which also says how large the photo itself is)."""
    return read_upload(data, max_bytes=max_bytes)[0]


def read_upload(data: bytes | str | Path, *, max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[np.ndarray, tuple[int, int]]:
    """An uploaded file -> (an upright H×W×3 uint8 RGB image of at most ``WORK_PIXELS`` pixels, the photo's
    own upright (width, height): a large one is read smaller).

    Handles grayscale, palette, RGBA/LA (composited on grey), 16-bit and float, CMYK and YCbCr images,
    EXIF orientation and animations (first frame). Anything else — empty, corrupt, truncated, not an
    image, too small, or too large to decode safely — is a ValueError that says why.
    """
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise ValueError("the upload did not arrive (no file was received); please try again")
        if path.stat().st_size > max_bytes:
            raise ValueError(f"the file is {path.stat().st_size / 2**20:.1f} MB; the limit is "
                             f"{max_bytes / 2**20:.0f} MB")
        data = path.read_bytes()
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"expected an image file, got {type(data).__name__}")
    if not data:
        raise ValueError("the file is empty")
    if len(data) > max_bytes:
        raise ValueError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")

    with warnings.catch_warnings():
        # PIL only warns between 89 and 179 MP; we want a clear refusal instead, checked below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=ACCEPTED)
        except UnidentifiedImageError:
            other = _format_name(data)
            if other:
                raise ValueError(f"{other} files are not accepted: please upload {ACCEPTED_TEXT}") from None
            raise ValueError(f"this file is not an image we can read ({ACCEPTED_TEXT}); it may be corrupt") from None
        except Image.DecompressionBombError as e:
            raise ValueError(f"the image is far too large to decode safely ({e})") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"this file could not be read as an image: it looks truncated or corrupt ({e})") from None
        w, h = im.size
        if w < MIN_SIDE or h < MIN_SIDE:
            raise ValueError(f"the image is {w}×{h} pixels: too small to segment; it must be at least "
                             f"{MIN_SIDE}×{MIN_SIDE}")
        if w * h > MAX_HEADER_PIXELS:
            raise ValueError(f"the image is {w}×{h} = {w * h / 1e6:.0f} megapixels: too large to decode safely "
                             f"(at most {MAX_HEADER_PIXELS / 1e6:.0f} MP for a JPEG, {MAX_DECODE_PIXELS / 1e6:.0f} MP "
                             "for other formats); please downscale it first")
        if w * h > WORK_PIXELS and im.format in ("JPEG", "MPO"):
            # Decode a JPEG at 1/2, 1/4 or 1/8 scale directly: a 100 MP photo never exists in memory.
            im.draft("RGB", _fit_pixels(w, h, WORK_PIXELS))
        dw, dh = im.size
        if dw * dh > MAX_DECODE_PIXELS:
            raise ValueError(f"the image is {w}×{h} = {w * h / 1e6:.0f} megapixels: too large to decode safely "
                             f"(at most {MAX_DECODE_PIXELS / 1e6:.0f} MP for {im.format or 'this format'}); "
                             "please downscale it, or save it as JPEG")
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
            # PIL reports truncated and corrupt data with any of these.
            raise ValueError(f"the image could not be decoded: the file looks truncated or corrupt ({e})") from None
        except Image.DecompressionBombError as e:
            raise ValueError(f"the image is far too large to decode safely ({e})") from None
    if im.width * im.height > WORK_PIXELS:
        # Downscale first, in the decoded mode (16-bit, float, palette...): every later copy is small.
        # BOX averages each output pixel's whole footprint (no aliasing) in two passes of modest size.
        im = _shrink(im, WORK_PIXELS)
    im = _to_rgb_or_rgba(im)
    stored = im.size
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a malformed EXIF block is the uploader's, not a bug: keep the pixels as stored
        pass
    if im.size != stored and im.size == stored[::-1]:  # turned a quarter by its EXIF orientation
        w, h = h, w
    if im.mode == "RGBA":
        # Transparent areas become mid-grey: neither black nor white, which both read as strong evidence.
        background = Image.new("RGBA", im.size, (128, 128, 128, 255))
        im = Image.alpha_composite(background, im)
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy(), (w, h)


def _fit_pixels(w: int, h: int, pixels: int) -> tuple[int, int]:
    s = min(1.0, math.sqrt(pixels / (w * h)))
    return max(1, int(w * s)), max(1, int(h * s))


def _shrink(im: Image.Image, pixels: int) -> Image.Image:
    """``im`` averaged down to at most ``pixels`` pixels, in its own mode, with small working copies."""
    w, h = im.size
    if im.mode in ("RGBA", "LA"):
        # Pillow premultiplies alpha in a full-size copy before resampling: reduce band by band instead.
        k = math.ceil(math.sqrt(w * h / pixels))
        band = 128 * k
        out = Image.new(im.mode, (math.ceil(w / k), math.ceil(h / k)))
        for y in range(0, h, band):
            out.paste(im.crop((0, y, w, min(h, y + band))).reduce(k), (0, y // k))
        im = out
        if im.width * im.height <= pixels:
            return im
    return im.resize(_fit_pixels(im.width, im.height, pixels), Image.Resampling.BOX)


def _format_name(data: bytes) -> str | None:
    """The name of the (refused) format ``data`` is in, from its header only: nothing is decoded."""
    Image.init()
    others = [f for f in Image.OPEN if f not in ACCEPTED]
    try:
        with Image.open(io.BytesIO(data), formats=others) as im:   # header parsing, in Python; never load()
            return im.format
    except Exception:  # noqa: BLE001 - any failure just means "unknown format", reported as such
        return None


def _to_rgb_or_rgba(im: Image.Image) -> Image.Image:
    """Any decodable mode -> "RGB" or "RGBA" (8 bits per channel). Called on the downscaled image."""
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float32)
        if mode.startswith("I;16"):
            a = a / 257.0                                     # 16-bit -> 8-bit
        else:                                                 # 32-bit int or float: stretch its own range
            lo, hi = (float(np.nanmin(a)), float(np.nanmax(a))) if np.isfinite(a).any() else (0.0, 1.0)
            a = (np.nan_to_num(a, nan=lo) - lo) / max(hi - lo, 1e-12) * 255
        return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")
    if mode in ("RGB", "L", "1", "P", "CMYK", "YCbCr", "RGBX", "HSV"):
        return im.convert("RGB")
    raise ValueError(f"images in colour mode {mode!r} are not supported; please save it as an RGB PNG or JPEG")


def fit_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop ``image`` H×W×3 to the aspect ``width:height`` and resize it to exactly that size."""
    h, w = image.shape[:2]
    target = width / height
    if w / h > target:
        cw, ch = max(1, round(h * target)), h
    else:
        cw, ch = w, max(1, round(w / target))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    crop = Image.fromarray(image[y0:y0 + ch, x0:x0 + cw])
    return np.array(crop.resize((width, height), Image.Resampling.LANCZOS), dtype=np.uint8)
