"""Datasets on disk, read in their official folder layouts and file formats.

A dataset is named by a spec ``"KIND:PATH"``, e.g. ``"vkitti2:/data/vkitti2"``; the kinds are ``KINDS``
and the layouts each accepts ``LAYOUTS`` (docs/datasets.md shows each as a folder tree). An item is

    (image 3×H×W float32 in [-1, 1], labels H×W int64, depth 1×H×W float32 metres)

- **labels** are class indices of the chosen label space (``gioada.classes``), mapped from each
  dataset's own ids or colours by the tables in ``mappings.py``; anything unmapped is ``IGNORE_INDEX``.
  A split with no label files at all (unlabelled target images) gives all-ignore labels and
  ``has_labels = False``; a split where only some images have one is an error.
- **depth** is metres along the optical axis, as stored (Virtual KITTI's sky is 655.35 m). Datasets
  without depth (GTA5, KITTI, Cityscapes) give zeros and ``has_depth = False``: zero means "no ground
  truth" (depth metrics skip it), and a source without depth must train with ``lam_depth = 0``
  (see :func:`source_has_depth`).
- **splits** (``SPLITS``): ``train`` for training, ``val`` watched while training, ``test`` for the final
  numbers and never watched. Each sequence ends with its ``test`` frames (the last 10%), preceded by its
  ``val`` frames (the 10% before), so neighbouring frames share a split but at two boundaries per
  sequence, and the variations of a Virtual KITTI scene (same frames, other weather) are cut alike.
  KITTI's 200 labelled images: 100 ``train``, 50 ``val``, 50 ``test``. Cityscapes' official test labels
  are not public, so its official ``val`` folder is ``test`` (the number papers report) and ``val`` is
  the last 10% of each city of its official ``train`` folder.
- **size**: images are resampled bilinearly, labels and depth by nearest neighbour (no new class ids,
  no depth mixed across object boundaries), all over one window of the frame with the output's aspect
  ratio: the centre window for evaluation, a random one, seeded by (seed, index), for training, which
  then serves a random ``crop`` of the frame at that size.

The datasets are map-style, as in ``gioada.data.synthetic`` (no torch base class).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np
from PIL import Image

from ..classes import IGNORE_INDEX, LabelSpace, get_label_space
from ..lazy import torch
from .mappings import (CITYSCAPES_IDS, SYNTHIA_IDS, VKITTI2_COLOURS, VKITTI_CATEGORIES, colour_table, id_lut,
                       lookup_colours)
from .synthetic import image_to_tensor

SPLITS = ("train", "val", "test")
Window = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the frame
CENTIMETRE = 0.01  # every depth map here is a 16-bit PNG in centimetres


@dataclass(frozen=True)
class Layout:
    """A dataset's files as path templates under its root. A ``{field}`` is part of one path component
    (``*`` in a glob); ``{frame}`` names a frame and the other fields its sequence."""

    image: str
    labels: str
    classes: Mapping                  # the dataset's class ids (or colour categories) -> gioada class names
    depth: str | None = None          # 16-bit PNG, centimetres
    palette: str | None = None        # colour-coded labels: the file giving each colour's category
    default_colours: Mapping | None = None  # colours -> categories where that file is absent
    test_fraction: float = 0.1        # the last part of each sequence is "test"
    val_fraction: float = 0.1         # and the part before it "val"; the rest is "train"
    folders: Mapping[str, str] | None = None  # official {split} folder of each split; splits sharing one
                                              # divide it by the fractions above

    def folder(self, split: str) -> str | None:
        return None if self.folders is None else self.folders[split]

    def sharing(self, split: str) -> tuple[str, ...]:
        """The splits read from the same frames as ``split`` (divided among them by the fractions)."""
        return tuple(s for s in SPLITS if self.folder(s) == self.folder(split))


_VKITTI2 = dict(classes=VKITTI_CATEGORIES, default_colours=VKITTI2_COLOURS)
# Each kind's accepted layouts, tried in order: the first with images under the root is read.
LAYOUTS: dict[str, tuple[Layout, ...]] = {
    "vkitti2": (
        # Virtual KITTI 2: all archives (rgb, classSegmentation, depth, textgt) extracted into one folder,
        Layout(image="Scene{scene}/{variation}/frames/rgb/Camera_0/rgb_{frame}.jpg",
               labels="Scene{scene}/{variation}/frames/classSegmentation/Camera_0/classgt_{frame}.png",
               depth="Scene{scene}/{variation}/frames/depth/Camera_0/depth_{frame}.png",
               palette="Scene{scene}/{variation}/colors.txt", **_VKITTI2),
        # or each into its own folder named after the archive (vkitti_2.0.3_rgb/, ...).
        Layout(image="vkitti_{version}_rgb/Scene{scene}/{variation}/frames/rgb/Camera_0/rgb_{frame}.jpg",
               labels="vkitti_{version}_classSegmentation/Scene{scene}/{variation}/frames/classSegmentation/"
                      "Camera_0/classgt_{frame}.png",
               depth="vkitti_{version}_depth/Scene{scene}/{variation}/frames/depth/Camera_0/depth_{frame}.png",
               palette="vkitti_{version}_textgt/Scene{scene}/{variation}/colors.txt", **_VKITTI2)),
    # Virtual KITTI 1.3.1: colours are per instance ("Car:12 r g b"), so each sequence's encoding is read.
    "vkitti1": (Layout(
        image="vkitti_1.3.1_rgb/{world}/{variation}/{frame}.png",
        labels="vkitti_1.3.1_scenegt/{world}/{variation}/{frame}.png",
        depth="vkitti_1.3.1_depthgt/{world}/{variation}/{frame}.png",
        palette="vkitti_1.3.1_scenegt/{world}_{variation}_scenegt_rgb_encoding.txt",
        classes=VKITTI_CATEGORIES),),
    # SYNTHIA-RAND-CITYSCAPES (the RAND_CITYSCAPES folder): 16-bit labels with the class id in the first
    # channel; 16-bit depth (centimetres) in every channel.
    "synthia": (Layout(image="RGB/{frame}.png", labels="GT/LABELS/{frame}.png", depth="Depth/Depth/{frame}.png",
                       classes=SYNTHIA_IDS),),
    "gta5": (Layout(image="images/{frame}.png", labels="labels/{frame}.png", classes=CITYSCAPES_IDS),),
    # KITTI semantic segmentation (data_semantics): only training/ has labels (testing/'s are not public,
    # and it is not read): 100 train, 50 val, 50 test.
    "kitti": (Layout(image="training/image_2/{frame}.png", labels="training/semantic/{frame}.png",
                     classes=CITYSCAPES_IDS, val_fraction=0.25, test_fraction=0.25),),
    # Cityscapes' official test labels are not public: its official val is our test (what papers report),
    # and our val is the last 10% of each city of the official train folder.
    "cityscapes": (Layout(image="leftImg8bit/{split}/{city}/{frame}_leftImg8bit.png",
                          labels="gtFine/{split}/{city}/{frame}_gtFine_labelIds.png", classes=CITYSCAPES_IDS,
                          folders={"train": "train", "val": "train", "test": "val"}, test_fraction=0.0),),
}
KINDS = tuple(LAYOUTS)


class SampleFiles(NamedTuple):
    """The files of one item; ``labels``/``depth`` are None where the split or dataset has none."""

    image: Path
    labels: Path | None
    depth: Path | None
    palette: Path | None  # colour-coded labels only


def parse_spec(spec: str) -> tuple[str, Path]:
    """``"KIND:PATH"`` -> (kind, path)."""
    kind, sep, path = spec.partition(":")
    if kind not in LAYOUTS:
        raise ValueError(f"unknown dataset kind {kind!r} in {spec!r}; known kinds: {', '.join(KINDS)} "
                         f"(or 'sim', the built-in simulator)")
    if not sep or not path:
        raise ValueError(f"{spec!r} names no folder: write KIND:PATH, e.g. {kind}:/data/{kind}")
    return kind, Path(path).expanduser()


def source_has_depth(spec: str) -> bool:
    """Whether source ``spec`` ("sim" or "KIND:PATH") gives depth; train with ``lam_depth = 0`` when not."""
    return spec == "sim" or LAYOUTS[parse_spec(spec)[0]][0].depth is not None


def open_dataset(spec: str, label_space: str, split: str, size: tuple[int, int], train: bool = False,
                 seed: int = 0, crop: tuple[int, int] | None = None) -> "DiskDataset":
    """The ``split`` ("train", "val" or "test") of dataset ``spec`` ("KIND:PATH") at the native ``size`` (H, W),
    labelled in ``label_space``; ``train`` places windows at random (seeded by ``seed`` and the index)
    instead of centrally, and then serves a random ``crop`` (h, w) of the native frame when given."""
    kind, root = parse_spec(spec)
    return DiskDataset(kind, root, get_label_space(label_space), split, size, train, seed, crop)


class DiskListing:
    """Which files a dataset on disk holds: the first of its kind's official layouts (:data:`LAYOUTS`) found
    under ``root``, and ``files``, one :class:`SampleFiles` per frame of ``split``, each image's partners
    checked to exist. Listing reads no image; errors name the layout expected."""

    def __init__(self, kind: str, root: Path, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is invalid: expected one of {SPLITS}")
        self.kind, self.root, self.split = kind, Path(root), split
        self.layout: Layout | None = None  # which of the kind's accepted layouts the folder has
        self.layout, frames = self._find_frames()
        self.files = self._find_files(frames)

    def expected_layout(self) -> str:
        """The file patterns this dataset reads (all the accepted layouts until one is found), for errors."""
        layouts = LAYOUTS[self.kind] if self.layout is None else (self.layout,)
        blocks = []
        for layout in layouts:
            fixed = self._fixed(layout)
            lines = [f"  images: {_glob(layout.image, **fixed)}", f"  labels: {_glob(layout.labels, **fixed)}"]
            if layout.depth:
                lines.append(f"  depth:  {_glob(layout.depth, **fixed)}")
            blocks.append("\n".join(lines))
        return (f"{self.kind} layout under {self.root} (see docs/datasets.md):\n"
                + "\n  or\n".join(blocks))

    def palette(self, path: Path) -> Mapping[tuple[int, int, int], str]:
        """The colour -> class name table of colour-coded labels: ``path``, else the layout's default."""
        if path.is_file():
            return read_palette(path)
        if self.layout.default_colours is not None:
            return self.layout.default_colours
        raise FileNotFoundError(f"colour-coded labels need {path}, which is missing; expected the "
                                f"{self.expected_layout()}\n  colours: {_glob(self.layout.palette)}")

    def _fixed(self, layout: Layout) -> dict[str, str]:
        return {} if layout.folders is None else {"split": layout.folder(self.split)}

    def _find_frames(self) -> tuple[Layout, list[dict[str, str]]]:
        """The first accepted layout with images under the root, and the fields of this split's frames."""
        root = self.root
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder; expected the {self.expected_layout()}")
        for layout in LAYOUTS[self.kind]:
            parse = _regex(layout.image)
            frames = [m.groupdict() for p in sorted(root.glob(_glob(layout.image, **self._fixed(layout))))
                      if (m := parse.fullmatch(p.relative_to(root).as_posix()))]
            if frames:
                break
        else:
            patterns = " or ".join(_glob(layout.image, **self._fixed(layout)) for layout in LAYOUTS[self.kind])
            raise FileNotFoundError(f"no images matching {patterns} under {root}; expected the "
                                    f"{self.expected_layout()}")
        sharing = layout.sharing(self.split)
        if len(sharing) > 1:  # splits read from the same folder divide each sequence: train, val, test
            val = layout.val_fraction if "val" in sharing else 0.0
            test = layout.test_fraction if "test" in sharing else 0.0
            frames = _split(frames, self.split, val, test)
            if not frames:
                ends = " after ".join(f"{s!r} (its last {f:.0%})" if s == "test" or not test else f"{s!r} ({f:.0%})"
                                      for s, f in (("test", test), ("val", val)) if f)
                raise FileNotFoundError(f"the {self.split!r} split of {root} is empty: every sequence is too short "
                                        f"to split (each ends with {ends}; the rest is 'train')")
        return layout, frames

    def _find_files(self, frames: list[dict[str, str]]) -> list[SampleFiles]:
        layout = self.layout
        labels = self._partners(layout.labels, frames, "label", required=False)
        depths = self._partners(layout.depth, frames, "depth", required=True) if layout.depth else None
        root = self.root
        return [SampleFiles(root / layout.image.format(**f), labels[k] if labels else None,
                            depths[k] if depths else None,
                            root / layout.palette.format(**f) if layout.palette else None)
                for k, f in enumerate(frames)]

    def _partners(self, template: str, frames: list[dict[str, str]], what: str, required: bool) -> list[Path] | None:
        """Each frame's ``what`` file: all of them, or None where none exists and they are not ``required``."""
        paths = [self.root / template.format(**f) for f in frames]
        found = set(self.root.glob(_glob(template, **self._fixed(self.layout))))
        missing = [k for k, p in enumerate(paths) if p not in found]
        if not missing:
            return paths
        if len(missing) == len(paths) and not required:
            return None
        k = missing[0]
        raise FileNotFoundError(f"image {self.root / self.layout.image.format(**frames[k])} has no {what} file "
                                f"{paths[k]} ({len(missing)} of {len(paths)} images lack one); every image needs "
                                f"its partner in the {self.expected_layout()}")


class DiskDataset:
    """A dataset on disk in one of its kind's official layouts, synthetic (Virtual KITTI 2, GTA5, SYNTHIA) or
    real (KITTI, Cityscapes): listed once (:class:`DiskListing`), each frame read when asked for. Item i:
    ``(image 3×H×W in [-1, 1], labels H×W int64, depth 1×H×W metres)`` of ``files[i]``: the frame resized to
    the native ``size``, or in training a ``crop`` of it (then H×W is the crop)."""

    def __init__(self, kind: str, root: Path, label_space: LabelSpace, split: str, size: tuple[int, int],
                 train: bool = False, seed: int = 0, crop: tuple[int, int] | None = None) -> None:
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size={size!r} is invalid: expected (height, width) in pixels")
        size = (int(size[0]), int(size[1]))
        if crop is not None and not (0 < crop[0] <= size[0] and 0 < crop[1] <= size[1]):
            raise ValueError(f"crop={crop!r} is invalid: expected (height, width) within the frame {size}")
        self.listing = listing = DiskListing(kind, root, split)
        self.kind, self.root, self.split, self.files = kind, listing.root, split, listing.files
        self.label_space, self.size, self.train, self.seed = label_space, size, train, seed
        self.out_size = (int(crop[0]), int(crop[1])) if train and crop else self.size   # what items hold
        layout = listing.layout
        self.has_labels = self.files[0].labels is not None
        self.has_depth = layout.depth is not None
        if layout.palette is None:
            self._lut = id_lut(layout.classes, label_space, size=2**16)
        else:
            self._colours = {p: colour_table(listing.palette(p), layout.classes, label_space)
                             for p in {f.palette for f in self.files} if self.has_labels}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.load(i, np.random.default_rng([self.seed, i]) if self.train else None)

    def load(self, i: int, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Item i; when ``train``, ``rng`` places the crop window (else the centre window is used)."""
        files = self.files[i]
        image, window, frame = self._image(files, rng)
        labels = torch.from_numpy(self._labels(files, window, frame).astype(np.int64))
        depth = torch.from_numpy(self._depth(files, window, frame)).unsqueeze(0)
        return image, labels, depth

    def image(self, i: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Just the image 3×H×W of item i (what a target domain gives in training)."""
        return self._image(self.files[i], rng)[0]

    def _image(self, files: SampleFiles, rng: np.random.Generator | None
               ) -> tuple[torch.Tensor, Window, tuple[Path, int, int]]:
        image = read_image(files.image)
        w, h = image.size
        window = crop_window((h, w), self.size, rng if self.train else None)
        if self.out_size != self.size:  # a training crop of the native frame, placed at random
            window = sub_window(window, self.size, self.out_size, rng)
        x0, y0, x1, y1 = window
        out = image.resize(self.out_size[::-1], Image.Resampling.BILINEAR, box=(x0 * w, y0 * h, x1 * w, y1 * h))
        return image_to_tensor(np.array(out)), window, (files.image, h, w)

    def _labels(self, files: SampleFiles, window: Window, frame: tuple[Path, int, int]) -> np.ndarray:
        """H×W uint8 class indices."""
        if files.labels is None:
            return np.full(self.out_size, IGNORE_INDEX, dtype=np.uint8)
        if files.palette is not None:
            rgb = _partner(read_array(files.labels, "RGB"), files.labels, frame)
            return lookup_colours(nearest(rgb, window, self.out_size), self._colours[files.palette])
        ids = _partner(read_array(files.labels), files.labels, frame)
        ids = ids[..., 0] if ids.ndim == 3 else ids  # SYNTHIA: the class id is the first channel
        return self._lut[nearest(ids, window, self.out_size)]

    def _depth(self, files: SampleFiles, window: Window, frame: tuple[Path, int, int]) -> np.ndarray:
        """H×W float32 metres (zeros when the dataset has no depth)."""
        if files.depth is None:
            return np.zeros(self.out_size, dtype=np.float32)
        depth = _partner(read_array(files.depth), files.depth, frame)
        depth = depth[..., 0] if depth.ndim == 3 else depth
        return nearest(depth, window, self.out_size).astype(np.float32) * np.float32(CENTIMETRE)


class PairedTrainSet:
    """Item i: ``(real 3×H×W, fake 3×H×W, labels H×W, depth 1×H×W)``: a target image, and an unrelated
    labelled source image with its labels and depth, both cropped at random.

    Each dataset is walked in a fresh seeded permutation per pass (item i is file ``i mod n`` of pass
    ``i // n`` of that permutation), so any ``length`` wraps over datasets of any size, every file is used
    equally often, and each item is a function of (seed, i) alone.
    """

    def __init__(self, source: DiskDataset, target: DiskDataset, length: int, seed: int = 0) -> None:
        if not source.has_labels:
            raise ValueError(f"the source {source.kind} at {source.root} has no label files for split "
                             f"{source.split!r}; training needs them. "
                             f"Expected the {source.listing.expected_layout()}")
        if source.size != target.size:
            raise ValueError(f"source size {source.size} differs from target size {target.size}")
        self.source, self.target, self.length, self.seed = source, target, length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        crops = np.random.default_rng([self.seed, 2, i])
        real = self.target.image(_pass_index(len(self.target), self.seed, 1, i), crops)
        fake, labels, depth = self.source.load(_pass_index(len(self.source), self.seed, 0, i), crops)
        return real, fake, labels, depth


def as_eval_set(ds: DiskDataset, n: int) -> torch.utils.data.Subset:
    """``n`` labelled items ``(image, labels, depth)`` spread evenly over ``ds`` (all of it when smaller),
    so a few items still cover every sequence."""
    if not ds.has_labels:
        raise ValueError(f"{ds.kind} at {ds.root} has no label files for split {ds.split!r}, and evaluation "
                         f"needs them. Expected the {ds.listing.expected_layout()}")
    picks = np.unique(np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int))
    return torch.utils.data.Subset(ds, picks.tolist())


# -- file formats --------------------------------------------------------------------------------------
def read_image(path: Path) -> Image.Image:
    """An RGB image, loaded; unreadable files raise OSError naming the path."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, SyntaxError) as e:
        raise OSError(f"cannot read image {path}: {e}") from e


def read_array(path: Path, mode: str | None = None) -> np.ndarray:
    """A PNG as stored (H×W or H×W×C; 16-bit channels kept whole), or converted to ``mode``."""
    try:
        with Image.open(path) as im:
            if mode is not None:
                return np.asarray(im.convert(mode))
            codec, extents, offset, rawmode = im.tile[0]
            if len(im.tile) != 1 or rawmode not in ("RGB;16B", "RGBA;16B"):
                return np.asarray(im)
            # Pillow decodes 16-bit colour PNGs to their high bytes only. Decoding the stream once more as
            # little-endian yields the low bytes; together they are the stored 16-bit values.
            high = np.asarray(im).astype(np.uint16)
        with Image.open(path) as im:
            im.tile = [(codec, extents, offset, rawmode[:-1] + "L")]
            return (high << 8) | np.asarray(im)
    except (OSError, SyntaxError) as e:
        raise OSError(f"cannot read {path}: {e}") from e


def read_palette(path: Path) -> dict[tuple[int, int, int], str]:
    """Colour -> category from Virtual KITTI 2's ``colors.txt`` ("Category r g b") or 1.3.1's
    ``*_scenegt_rgb_encoding.txt`` ("Category(:id) r g b", e.g. "Car:12 200 100 50")."""
    colours = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("Category"):
            continue
        if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
            raise ValueError(f"{path}, line {n}: expected 'Category r g b', got {line!r}")
        colours[tuple(int(p) for p in parts[1:])] = parts[0].split(":")[0]
    if not colours:
        raise ValueError(f"{path} lists no colours; expected lines 'Category r g b'")
    return colours


# -- geometry ------------------------------------------------------------------------------------------
def crop_window(frame: tuple[int, int], size: tuple[int, int], rng: np.random.Generator | None = None
                ) -> Window:
    """The largest window (x0, y0, x1, y1, fractions of the frame H×W) with the aspect ratio of ``size``:
    centred, or placed at random by ``rng``."""
    (h, w), (out_h, out_w) = frame, size
    scale = max(out_h / h, out_w / w)  # the scale at which the frame just covers the output
    cw, ch = out_w / (scale * w), out_h / (scale * h)
    x0, y0 = ((1 - cw) / 2, (1 - ch) / 2) if rng is None else (rng.uniform(0, 1 - cw), rng.uniform(0, 1 - ch))
    return x0, y0, x0 + cw, y0 + ch


def sub_window(window: Window, size: tuple[int, int], crop: tuple[int, int],
               rng: np.random.Generator | None = None) -> Window:
    """A ``crop`` (h, w) of ``window`` seen at ``size`` (H, W), as fractions of the frame: centred, or
    placed at random by ``rng``."""
    (x0, y0, x1, y1), (h, w), (ch, cw) = window, size, crop
    if rng is None:
        ox, oy = (w - cw) // 2 / w, (h - ch) // 2 / h
    else:
        ox, oy = int(rng.integers(0, w - cw + 1)) / w, int(rng.integers(0, h - ch + 1)) / h
    return x0 + ox * (x1 - x0), y0 + oy * (y1 - y0), x0 + (ox + cw / w) * (x1 - x0), y0 + (oy + ch / h) * (y1 - y0)


def nearest(a: np.ndarray, window: Window, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of ``window`` of ``a`` (H×W or H×W×C) to ``size``: only stored values."""
    (h, w), (out_h, out_w), (x0, y0, x1, y1) = a.shape[:2], size, window
    rows = ((y0 + (np.arange(out_h) + 0.5) / out_h * (y1 - y0)) * h).astype(np.int64).clip(0, h - 1)
    cols = ((x0 + (np.arange(out_w) + 0.5) / out_w * (x1 - x0)) * w).astype(np.int64).clip(0, w - 1)
    return a[rows[:, None], cols[None, :]]


def _partner(a: np.ndarray, path: Path, frame: tuple[Path, int, int]) -> np.ndarray:
    """``a`` (read from ``path``) if it shows the same frame as the image; a partner at another resolution
    is fine (the window is in fractions), another aspect ratio is not."""
    image, h, w = frame
    if abs(a.shape[0] / a.shape[1] - h / w) > 0.02 * h / w:
        raise ValueError(f"mismatched pair: image {image} is {w}×{h} but {path} is {a.shape[1]}×{a.shape[0]}")
    return a


# -- listing helpers -----------------------------------------------------------------------------------
_FIELD = re.compile(r"\{(\w+)\}")


def _glob(template: str, **fixed: str) -> str:
    return _FIELD.sub(lambda m: fixed.get(m.group(1), "*"), template)


def _regex(template: str) -> re.Pattern:
    parts = _FIELD.split(template)  # literal, field, literal, field, ...
    return re.compile("".join(f"(?P<{p}>[^/]+)" if k % 2 else re.escape(p) for k, p in enumerate(parts)))


def _split(frames: list[dict[str, str]], split: str, val_fraction: float, test_fraction: float
           ) -> list[dict[str, str]]:
    """The ``split`` part of sorted ``frames``: of each sequence of n frames, the last ceil(test_fraction·n)
    are "test", the ceil(val_fraction·n) before them "val" (as many as remain) and the rest "train"."""
    sequences: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for f in frames:
        sequences.setdefault(tuple(v for k, v in f.items() if k != "frame"), []).append(f)
    out = []
    for seq in sequences.values():
        first_test = len(seq) - math.ceil(test_fraction * len(seq))
        first_val = max(0, first_test - math.ceil(val_fraction * len(seq)))
        out += {"train": seq[:first_val], "val": seq[first_val:first_test], "test": seq[first_test:]}[split]
    return out


def _pass_index(n: int, seed: int, stream: int, i: int) -> int:
    return int(np.random.default_rng([seed, stream, i // n]).permutation(n)[i % n])
