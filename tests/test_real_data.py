"""Datasets on disk: tiny fixture folders in each official layout load with the right classes, depth in
metres, pairing and ignore handling; bad folders fail with errors that say what was expected."""
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gioada.classes import CITYSCAPES19, IGNORE_INDEX, SYNTHIA13, SYNTHIA16, VKITTI10
from gioada.data.real import KINDS, PairedTrainSet, as_eval_set, open_dataset, read_array, source_has_depth

H, W = 20, 40
CAR, ROAD, SKY = (VKITTI10.classes.index(c) for c in ("car", "road", "sky"))


# -- writing fixtures ------------------------------------------------------------------------------------
def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def save_png16(path: Path, array: np.ndarray) -> Path:
    """An H×W×3 or H×W×4 uint16 PNG (Pillow cannot write these); odd rows use the Sub filter, so reading
    also checks PNG filtering at 6-8 bytes per pixel."""
    h, w, c = array.shape
    rows = np.frombuffer(array.astype(">u2").tobytes(), np.uint8).reshape(h, w * c * 2)
    bpp = 2 * c
    raw = b""
    for y, row in enumerate(rows):
        if y % 2:
            row = np.concatenate([row[:bpp], row[bpp:] - row[:-bpp]])  # uint8 arithmetic wraps, as PNG's does
        raw += bytes([y % 2]) + row.tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def photo(k: int) -> np.ndarray:
    """A flat image whose brightness identifies frame k (k < 8)."""
    return np.full((H, W, 3), (30 + 50 * k) % 256, np.uint8)


def halves(left, right, dtype=np.uint8) -> np.ndarray:
    a = np.empty((H, W) + np.shape(left), dtype)
    a[:, : W // 2], a[:, W // 2:] = left, right
    return a


def depth_cm() -> np.ndarray:
    return halves(1234, 5000, np.uint16)  # 12.34 m left, 50 m right


VK2_COLOURS = {"Car": (255, 127, 80), "Road": (100, 60, 100), "GuardRail": (250, 100, 255)}


def make_vkitti2(root: Path, frames: int = 5, colors_txt: bool = True, per_modality: bool = False,
                 sequences: tuple[str, ...] = ("Scene01/clone",), colours: dict | None = None) -> Path:
    """Virtual KITTI 2 with all archives extracted into ``root``, or (``per_modality``) each into its own
    folder named after the archive, as ``vkitti_2.0.3_rgb/Scene01/clone/...``."""
    folder = {m: root / (f"vkitti_2.0.3_{m}" if per_modality else "") for m in
              ("rgb", "classSegmentation", "depth", "textgt")}
    for seq in sequences:
        for k in range(frames):
            save(folder["rgb"] / seq / f"frames/rgb/Camera_0/rgb_{k:05d}.jpg", photo(k))
            labels = halves(VK2_COLOURS["Car"], VK2_COLOURS["Road"])
            labels[0] = VK2_COLOURS["GuardRail"]  # void in every label space
            labels[1, 0] = (1, 2, 3)              # a colour no palette lists
            save(folder["classSegmentation"] / seq / f"frames/classSegmentation/Camera_0/classgt_{k:05d}.png", labels)
            save(folder["depth"] / seq / f"frames/depth/Camera_0/depth_{k:05d}.png", depth_cm())
        if colors_txt:
            (folder["textgt"] / seq).mkdir(parents=True, exist_ok=True)
            (folder["textgt"] / seq / "colors.txt").write_text("Category r g b\n" + "".join(
                f"{name} {r} {g} {b}\n" for name, (r, g, b) in (colours or VK2_COLOURS).items()))
    return root


def make_vkitti1(root: Path, frames: int = 4) -> Path:
    for k in range(frames):
        save(root / f"vkitti_1.3.1_rgb/0001/clone/{k:05d}.png", photo(k))
        save(root / f"vkitti_1.3.1_scenegt/0001/clone/{k:05d}.png", halves((200, 100, 50), (10, 20, 30)))
        save(root / f"vkitti_1.3.1_depthgt/0001/clone/{k:05d}.png", depth_cm())
    (root / "vkitti_1.3.1_scenegt/0001_clone_scenegt_rgb_encoding.txt").write_text(
        "Category(:id) r g b\nCar:0 200 100 50\nVan:1 10 20 30\nSky 90 200 255\n")
    return root


def make_synthia(root: Path, ids: np.ndarray, frames: int = 4) -> Path:
    for k in range(frames):
        save(root / f"RGB/{k:07d}.png", photo(k))
        instance = np.full((H, W), 7, np.uint16)
        save_png16(root / f"GT/LABELS/{k:07d}.png", np.stack([ids, instance, np.zeros_like(ids)], -1))
        save_png16(root / f"Depth/Depth/{k:07d}.png", np.repeat(depth_cm()[..., None], 3, -1))
    return root


def make_gta5(root: Path, frames: int = 4) -> Path:
    for k in range(frames):
        save(root / f"images/{k + 1:05d}.png", photo(k))
        labels = Image.fromarray(halves(26, 7))  # Cityscapes ids: car | road, as palette PNGs like GTA5's
        labels.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
        labels.putpixel((0, 0), 0)               # unlabeled
        (root / "labels").mkdir(exist_ok=True)
        labels.save(root / f"labels/{k + 1:05d}.png")
    return root


def make_kitti(root: Path, frames: int = 4) -> Path:
    for k in range(frames):
        save(root / f"training/image_2/{k:06d}_10.png", photo(k))
        save(root / f"training/semantic/{k:06d}_10.png", halves(26, 8))  # car | sidewalk
        save(root / f"testing/image_2/{k:06d}_10.png", photo(k))
    return root


CITY_CLASSES = (7, 26, 23, 21)  # road, car, sky, vegetation: frame k is all class CITY_CLASSES[k % 4]


def make_cityscapes(root: Path) -> Path:
    for split, city, n in (("train", "aachen", 3), ("train", "bochum", 2), ("val", "frankfurt", 2)):
        for k in range(n):
            stem = f"{city}_{k:06d}_000019"
            save(root / f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", photo(k))
            save(root / f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png",
                 np.full((H, W), CITY_CLASSES[k], np.uint8))
            save(root / f"gtFine/{split}/{city}/{stem}_gtFine_color.png", photo(0))
    return root


# -- formats and mappings --------------------------------------------------------------------------------
def test_16_bit_pngs_read_back_exactly(tmp_path):
    grey = np.array([[0, 1234], [65535, 300]], np.uint16)
    assert np.array_equal(read_array(save(tmp_path / "grey.png", grey)), grey)
    colour = np.random.default_rng(0).integers(0, 2**16, (5, 7, 3)).astype(np.uint16)
    assert np.array_equal(read_array(save_png16(tmp_path / "rgb.png", colour)), colour)
    rgba = np.random.default_rng(1).integers(0, 2**16, (4, 6, 4)).astype(np.uint16)
    assert np.array_equal(read_array(save_png16(tmp_path / "rgba.png", rgba)), rgba)


def test_vkitti2_colours_map_to_classes_and_depth_is_in_metres(tmp_path):
    ds = open_dataset(f"vkitti2:{make_vkitti2(tmp_path)}", "vkitti10", "train", (H, W))
    assert len(ds) == 3 and ds.has_labels and ds.has_depth and ds.label_space is VKITTI10
    image, labels, depth = ds[0]
    assert image.shape == (3, H, W) and image.dtype == torch.float32 and -1 <= image.min() <= image.max() <= 1
    assert labels.shape == (H, W) and labels.dtype == torch.int64
    assert (labels[2:, : W // 2] == CAR).all() and (labels[2:, W // 2:] == ROAD).all()
    assert (labels[0] == IGNORE_INDEX).all() and labels[1, 0] == IGNORE_INDEX  # GuardRail, unknown colour
    assert depth.shape == (1, H, W) and depth.dtype == torch.float32
    assert torch.allclose(depth[0, :, 0], torch.tensor(12.34)) and torch.allclose(depth[0, :, -1], torch.tensor(50.0))


def test_vkitti2_without_colors_txt_uses_the_published_colours(tmp_path):
    ds = open_dataset(f"vkitti2:{make_vkitti2(tmp_path, colors_txt=False)}", "vkitti10", "val", (H, W))
    assert (ds[0][1][2:, 0] == CAR).all()


def test_vkitti1_instance_colours_map_through_their_category(tmp_path):
    ds = open_dataset(f"vkitti1:{make_vkitti1(tmp_path)}", "vkitti10", "val", (H, W))
    _, labels, depth = ds[0]
    assert (labels == CAR).all()  # "Car:0" and "Van:1" are both cars
    assert torch.allclose(depth[0, 0, 0], torch.tensor(12.34))


def test_synthia_16_bit_ids_map_to_16_and_13_classes(tmp_path):
    ids = halves(8, 21, np.uint16)  # car | wall
    ids[0] = 264                    # 0x0108: only the whole 16-bit value says "not car"
    root = make_synthia(tmp_path, ids)
    _, labels16, depth = open_dataset(f"synthia:{root}", "synthia16", "train", (H, W))[0]
    _, labels13, _ = open_dataset(f"synthia:{root}", "synthia13", "train", (H, W))[0]
    assert (labels16[1:, 0] == SYNTHIA16.classes.index("car")).all()
    assert (labels16[1:, -1] == SYNTHIA16.classes.index("wall")).all() and (labels13[1:, -1] == IGNORE_INDEX).all()
    assert (labels13[1:, 0] == SYNTHIA13.classes.index("car")).all()
    assert (labels16[0] == IGNORE_INDEX).all()
    assert torch.allclose(depth[0, :, 0], torch.tensor(12.34))


def test_gta5_cityscapes_ids_and_no_depth(tmp_path):
    ds = open_dataset(f"gta5:{make_gta5(tmp_path)}", "cityscapes19", "train", (H, W))
    assert not ds.has_depth and ds.has_labels
    _, labels, depth = ds[0]
    assert labels[0, 0] == IGNORE_INDEX  # id 0, unlabeled
    assert (labels[1:, 0] == CITYSCAPES19.classes.index("car")).all()
    assert (labels[:, -1] == CITYSCAPES19.classes.index("road")).all()
    assert (depth == 0).all()
    assert source_has_depth(f"gta5:{tmp_path}") is False
    assert source_has_depth(f"vkitti2:{tmp_path}") and source_has_depth("sim")


def test_kitti_cityscapes_ids_into_vkitti10_and_splits(tmp_path):
    root = make_kitti(tmp_path)
    train, val, test = (open_dataset(f"kitti:{root}", "vkitti10", split, (H, W)) for split in ("train", "val", "test"))
    assert [f.image.name for f in train.files] == ["000000_10.png", "000001_10.png"]  # half of 200: 100 images
    assert [f.image.name for f in val.files] == ["000002_10.png"]                      # a quarter: 50
    assert [f.image.name for f in test.files] == ["000003_10.png"]                     # a quarter: 50
    assert all("training" in str(f.image) for f in train.files + val.files + test.files)
    _, labels, _ = val[0]
    assert (labels[:, 0] == CAR).all() and (labels[:, -1] == IGNORE_INDEX).all()  # sidewalk: not a vkitti10 class


def test_cityscapes_official_val_is_test_and_val_ends_each_training_city(tmp_path):
    root = make_cityscapes(tmp_path)
    train, val, test = (open_dataset(f"cityscapes:{root}", "cityscapes19", split, (H, W))
                        for split in ("train", "val", "test"))
    assert [f.image.name[:13] for f in train.files] == ["aachen_000000", "aachen_000001", "bochum_000000"]
    assert [f.image.name[:13] for f in val.files] == ["aachen_000002", "bochum_000001"]
    assert all("leftImg8bit/train/" in f.image.as_posix() for f in train.files + val.files)
    assert len(test) == 2 and all(f.image.as_posix().endswith(f"leftImg8bit/val/frankfurt/{f.image.name}")
                                  for f in test.files)
    for ds in (train, val, test):
        for k, f in enumerate(ds.files):
            image, labels, _ = ds[k]
            assert f.labels.name == f.image.name.replace("leftImg8bit", "gtFine_labelIds")
            brightness = round(((image.mean().item() + 1) * 127.5 - 30) / 50)  # the frame index in its name
            name = {7: "road", 26: "car", 23: "sky", 21: "vegetation"}[CITY_CLASSES[brightness]]
            assert (labels == CITYSCAPES19.classes.index(name)).all()


def test_vkitti2_unpacked_one_folder_per_archive_reads_like_the_merged_layout(tmp_path):
    """vkitti_2.0.3_rgb/, vkitti_2.0.3_classSegmentation/, vkitti_2.0.3_depth/ and vkitti_2.0.3_textgt/
    side by side: the same items as one merged folder, and each sequence's colors.txt from textgt."""
    merged = make_vkitti2(tmp_path / "merged")
    apart = make_vkitti2(tmp_path / "apart", per_modality=True, colours={**VK2_COLOURS, "Van": (1, 2, 3)})
    for split in ("train", "val", "test"):
        a = open_dataset(f"vkitti2:{merged}", "vkitti10", split, (H, W))
        b = open_dataset(f"vkitti2:{apart}", "vkitti10", split, (H, W))
        assert [f.image.name for f in a.files] == [f.image.name for f in b.files] and b.has_labels and b.has_depth
        assert all("vkitti_2.0.3_depth/Scene01/clone/frames/depth/" in f.depth.as_posix() for f in b.files)
        (ia, la, da), (ib, lb, db) = a[0], b[0]
        assert torch.equal(ia, ib) and torch.equal(da, db)
        assert la[1, 0] == IGNORE_INDEX and lb[1, 0] == CAR  # textgt's colors.txt lists (1, 2, 3) as a Van
        lb[1, 0] = IGNORE_INDEX
        assert torch.equal(la, lb)
    no_textgt = make_vkitti2(tmp_path / "no_textgt", per_modality=True, colors_txt=False)
    assert open_dataset(f"vkitti2:{no_textgt}", "vkitti10", "test", (H, W))[0][1][1, 0] == IGNORE_INDEX


def test_vkitti2_per_archive_folders_missing_one_say_which(tmp_path):
    root = make_vkitti2(tmp_path, per_modality=True)
    for f in (root / "vkitti_2.0.3_depth").rglob("*.png"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match="(?s)rgb_00000.jpg has no depth file .*vkitti_2.0.3_depth/Scene01/"
                                                "clone/frames/depth/Camera_0/depth_00000.png.*"
                                                "depth:  vkitti_\\*_depth/Scene\\*/"):
        open_dataset(f"vkitti2:{root}", "vkitti10", "train", (H, W))


def test_val_and_test_end_every_sequence_and_never_overlap(tmp_path):
    seqs = ("Scene01/clone", "Scene01/fog", "Scene02/clone")
    root = make_vkitti2(tmp_path, frames=10, sequences=seqs)
    frames = {split: {(f.image.parts[-6], f.image.parts[-5], f.image.name)
                      for f in open_dataset(f"vkitti2:{root}", "vkitti10", split, (H, W)).files}
              for split in ("train", "val", "test")}
    assert sum(map(len, frames.values())) == len(set.union(*frames.values())) == 30  # disjoint, all frames
    for seq in seqs:  # per sequence: the last 10% is test, the 10% before it val; weathers share the frames
        scene, variation = seq.split("/")
        assert {n for s, v, n in frames["test"] if (s, v) == (scene, variation)} == {"rgb_00009.jpg"}
        assert {n for s, v, n in frames["val"] if (s, v) == (scene, variation)} == {"rgb_00008.jpg"}
    with pytest.raises(ValueError, match="split='all' is invalid"):
        open_dataset(f"vkitti2:{root}", "vkitti10", "all", (H, W))
    short = make_vkitti2(tmp_path / "short", frames=2)  # one test frame, one val frame, no training frame
    assert len(open_dataset(f"vkitti2:{short}", "vkitti10", "val", (H, W))) == 1
    with pytest.raises(FileNotFoundError, match="'train' split of .*short is empty: every sequence is too short to "
                                                "split \\(each ends with 'test' \\(its last 10%\\) after 'val' "
                                                "\\(10%\\); the rest is 'train'\\)"):
        open_dataset(f"vkitti2:{short}", "vkitti10", "train", (H, W))


def test_eval_set_and_the_datamodule_honour_the_split(tmp_path):
    """Training watches "val"; evaluation (eval_set's default) reads "test", a disjoint part never watched."""
    from gioada.config import DataConfig
    from gioada.data import GIOAdaDataModule, eval_set
    cfg = DataConfig(source=f"vkitti2:{make_vkitti2(tmp_path / 'vk', frames=10)}",
                     target=f"kitti:{make_kitti(tmp_path / 'kitti', frames=8)}", height=32, width=64, val_scenes=50)

    def names(ds):
        return {ds.dataset.files[i].image.name for i in ds.indices}

    for domain, test, val in (("target", {"000006_10.png", "000007_10.png"}, {"000004_10.png", "000005_10.png"}),
                              ("source", {"rgb_00009.jpg"}, {"rgb_00008.jpg"})):
        assert names(eval_set(cfg, domain)) == names(eval_set(cfg, domain, split="test")) == test
        assert names(eval_set(cfg, domain, split="val")) == val
    assert names(GIOAdaDataModule(cfg, steps=1).val_dataloader().dataset) == {"000004_10.png", "000005_10.png"}
    with pytest.raises(ValueError, match="split='train' is invalid"):
        eval_set(cfg, "target", split="train")


# -- resizing --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, train", [((8, 16), False), ((7, 23), False), ((32, 32), True), ((16, 64), True)])
def test_resizing_keeps_only_stored_labels_and_depths(tmp_path, size, train):
    ds = open_dataset(f"vkitti2:{make_vkitti2(tmp_path)}", "vkitti10", "train", size, train=train)
    image, labels, depth = ds[1]
    assert image.shape == (3, *size) and labels.shape == size and depth.shape == (1, *size)
    assert set(labels.unique().tolist()) <= {CAR, ROAD, IGNORE_INDEX}
    assert set(depth.unique().tolist()) <= {np.float32(12.34), 50.0}
    left = labels == CAR  # labels and depth are sampled at the same pixels
    assert torch.allclose(depth[0][left], torch.tensor(12.34))


def test_training_crops_are_seeded_by_seed_and_index(tmp_path):
    spec = f"vkitti2:{make_vkitti2(tmp_path)}"
    a = open_dataset(spec, "vkitti10", "train", (16, 16), train=True, seed=1)
    b = open_dataset(spec, "vkitti10", "train", (16, 16), train=True, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a[2], b[2]))
    crops = {tuple((a[0][1] == CAR).sum(1).tolist()) for a in
             [open_dataset(spec, "vkitti10", "train", (16, 16), train=True, seed=s) for s in range(6)]}
    assert len(crops) > 1


# -- pairing for training and evaluation ---------------------------------------------------------------
def test_paired_train_set_is_deterministic_and_wraps(tmp_path):
    source = open_dataset(f"vkitti2:{make_vkitti2(tmp_path / 's')}", "vkitti10", "train", (16, 32), train=True)
    target = open_dataset(f"kitti:{make_kitti(tmp_path / 't')}", "vkitti10", "train", (16, 32), train=True)
    ds = PairedTrainSet(source, target, length=7, seed=3)
    real, fake, labels, depth = ds[6]
    assert real.shape == fake.shape == (3, 16, 32) and labels.shape == (16, 32) and depth.shape == (1, 16, 32)
    assert all(torch.equal(x, y) for x, y in zip(ds[4], PairedTrainSet(source, target, 7, seed=3)[4]))
    # Each pass over the 3 source files uses every one of them once.
    firsts = {round(PairedTrainSet(source, target, 6, seed=3)[i][1].mean().item(), 2) for i in range(3)}
    assert len(firsts) == 3


def test_eval_set_spreads_over_the_split_and_needs_labels(tmp_path):
    ds = open_dataset(f"kitti:{make_kitti(tmp_path)}", "vkitti10", "train", (H, W))
    assert len(as_eval_set(ds, 1)) == 1 and len(as_eval_set(ds, 50)) == 2
    unlabelled = tmp_path / "images_only"
    for k in range(4):
        save(unlabelled / f"training/image_2/{k:06d}_10.png", photo(k))
    target = open_dataset(f"kitti:{unlabelled}", "vkitti10", "val", (H, W))
    assert not target.has_labels and (target[0][1] == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match="(?s)no label files.*training/semantic"):
        as_eval_set(target, 2)


# -- errors that teach -------------------------------------------------------------------------------------
def test_missing_folder_and_empty_folder_name_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)is not a folder.*Scene\\*/\\*/frames/rgb/Camera_0/rgb_\\*.jpg"):
        open_dataset(f"vkitti2:{tmp_path / 'nowhere'}", "vkitti10", "train", (H, W))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images matching leftImg8bit/val/\\*/\\*_leftImg8bit.png"):
        open_dataset(f"cityscapes:{tmp_path / 'empty'}", "cityscapes19", "test", (H, W))  # the official val
    with pytest.raises(FileNotFoundError, match="(?s)no images matching Scene\\*/.* or vkitti_\\*_rgb/Scene\\*/"
                                                ".*  or\n  images: vkitti_\\*_rgb/"):
        open_dataset(f"vkitti2:{tmp_path / 'empty'}", "vkitti10", "train", (H, W))


def test_an_image_without_its_label_or_depth_names_both_files(tmp_path):
    root = make_vkitti2(tmp_path)
    (root / "Scene01/clone/frames/classSegmentation/Camera_0/classgt_00001.png").unlink()
    with pytest.raises(FileNotFoundError, match="rgb_00001.jpg has no label file .*classgt_00001.png"):
        open_dataset(f"vkitti2:{root}", "vkitti10", "train", (H, W))
    root = make_synthia(tmp_path / "synthia", np.zeros((H, W), np.uint16))
    (root / "Depth/Depth/0000001.png").unlink()
    with pytest.raises(FileNotFoundError, match="RGB/0000001.png has no depth file .*Depth/Depth/0000001.png"):
        open_dataset(f"synthia:{root}", "synthia16", "train", (H, W))


def test_a_pair_of_different_frames_is_reported_with_both_names(tmp_path):
    root = make_gta5(tmp_path)
    save(root / "labels/00001.png", np.zeros((H, H), np.uint8))
    ds = open_dataset(f"gta5:{root}", "cityscapes19", "train", (H, W))
    with pytest.raises(ValueError, match="mismatched pair: image .*images/00001.png is 40×20 but .*labels/00001.png"):
        ds[0]


def test_unknown_kind_corrupt_image_and_bad_palette(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset kind 'vkitti3'.*" + ", ".join(KINDS)):
        open_dataset("vkitti3:/data", "vkitti10", "train", (H, W))
    with pytest.raises(ValueError, match="names no folder"):
        open_dataset("kitti:", "vkitti10", "train", (H, W))
    root = make_kitti(tmp_path / "kitti")
    (root / "training/image_2/000000_10.png").write_bytes(b"not a png")
    with pytest.raises(OSError, match="cannot read image .*000000_10.png"):
        open_dataset(f"kitti:{root}", "vkitti10", "train", (H, W))[0]
    root = make_vkitti2(tmp_path / "vk")
    (root / "Scene01/clone/colors.txt").write_text("Category r g b\nCar 255 127\n")
    with pytest.raises(ValueError, match="colors.txt, line 2: expected 'Category r g b'"):
        open_dataset(f"vkitti2:{root}", "vkitti10", "train", (H, W))


# -- end to end ----------------------------------------------------------------------------------------------
def test_a_few_training_steps_from_vkitti2_to_kitti(tmp_path):
    from gioada.config import DataConfig, ModelConfig, RunConfig
    from gioada.train import train
    data = DataConfig(source=f"vkitti2:{make_vkitti2(tmp_path / 'vkitti2')}",
                      target=f"kitti:{make_kitti(tmp_path / 'kitti', frames=8)}", height=32, width=64, batch_size=2,
                      val_scenes=2)
    cfg = RunConfig(model=ModelConfig(task_width=8, transform_width=8, disc_width=8, num_steps_per_epoch=2),
                    data=data, steps=2, val_every=2, accelerator="cpu")
    result = train(cfg, out_dir=None, progress=False, eval_scenes=2)
    assert result.info["steps_done"] == 2
    assert result.metrics["scenes"] == 2 and 0 <= result.metrics["miou"] <= 100


def test_a_source_without_depth_fine_tunes_with_the_depth_loss_off(tmp_path):
    """GTA5 has no depth: the app's presets, sliders and runs switch λ_depth off instead of refusing."""
    from gioada.app.finetune import FinetuneManager, FinetuneParams, preset
    from gioada.app.registry import ModelRegistry
    from gioada.config import DataConfig
    data = DataConfig(source=f"gta5:{make_gta5(tmp_path / 'gta5')}", target=f"cityscapes:{make_cityscapes(tmp_path)}",
                      label_space="cityscapes19")
    manager = FinetuneManager(ModelRegistry(tmp_path / "assets", tmp_path / "runs"), data=data)
    assert manager.has_depth is False and preset("Full GIO-Ada", manager.has_depth)[2] == 0.0
    cfg = manager.config(FinetuneParams(lam_depth=0.5, steps=2, height=32))
    assert cfg.model.lam_depth == 0.0 and cfg.model.lam_input > 0 and cfg.model.num_classes == 19
    assert not cfg.model.transform_depth and not cfg.model.output_disc_depth


def test_training_with_depth_on_a_source_without_it_is_refused_with_what_to_change(tmp_path):
    from gioada.config import DataConfig, ModelConfig, RunConfig
    from gioada.train import train
    data = DataConfig(source=f"gta5:{make_gta5(tmp_path / 'gta5')}", target=f"cityscapes:{make_cityscapes(tmp_path)}",
                      label_space="cityscapes19")
    with pytest.raises(ValueError, match="gta5 has no depth.*--lam-depth 0 --no-transform-depth --no-output-disc-depth"):
        train(RunConfig(model=ModelConfig(num_classes=19), data=data, steps=1), tmp_path / "run")
    assert not (tmp_path / "run").exists()
