"""The metrics against values worked out by hand: mIoU (a fraction in [0, 1]), per-image mIoU, depth errors,
and the validation mIoU GIOAda logs."""
import math

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from gioada import GIOAda
from gioada.classes import IGNORE_INDEX
from gioada.metrics import DepthMetrics, image_miou, segmentation_metrics

IGN = IGNORE_INDEX


def seg(pred, labels, num_classes=4):
    miou, iou = segmentation_metrics(num_classes)
    pred, labels = torch.tensor(pred), torch.tensor(labels)
    miou.update(pred, labels)
    iou.update(pred, labels)
    return miou.compute(), iou.compute()


# -- segmentation ---------------------------------------------------------------------------------------
def test_perfect_prediction_is_an_miou_of_one():
    labels = [[0, 1, 2, 3], [3, 2, 1, 0]]
    miou, iou = seg(labels, labels)
    assert miou.item() == 1.0 and iou.tolist() == [1.0] * 4
    assert image_miou(torch.tensor(labels), torch.tensor(labels), 4) == 1.0


def test_miou_by_hand():
    # class 0: 2 hits of a union of 4 pixels; class 1: 2 of 4; classes 2 and 3 perfect.
    pred, labels = [[0, 0, 1, 1], [2, 3, 1, 0]], [[0, 1, 1, 1], [2, 3, 0, 0]]
    miou, iou = seg(pred, labels)
    assert iou.tolist() == pytest.approx([2 / 4, 2 / 4, 1.0, 1.0])
    assert miou.item() == pytest.approx(3 / 4)
    assert image_miou(torch.tensor(pred), torch.tensor(labels), 4) == pytest.approx(3 / 4)


def test_ignored_pixels_count_in_no_class():
    labels = [[0, 1, IGN, IGN], [1, 0, IGN, 2]]
    pred = [[0, 1, 3, 1], [1, 0, 0, 2]]                   # wrong only where the label is ignored
    miou, iou = seg(pred, labels)
    assert miou.item() == 1.0
    assert iou[:3].tolist() == [1.0, 1.0, 1.0]
    assert image_miou(torch.tensor(pred), torch.tensor(labels), 4) == 1.0


def test_a_class_absent_from_prediction_and_labels_is_left_out_of_the_mean():
    # Classes 2 and 3 appear nowhere: the mean is over classes 0 and 1 (2/3 and 1/2), not over all four.
    pred, labels = [[0, 0, 1, 1]], [[0, 0, 0, 1]]
    expected = (2 / 3 + 1 / 2) / 2
    assert seg(pred, labels)[0].item() == pytest.approx(expected)
    assert image_miou(torch.tensor(pred), torch.tensor(labels), 4) == pytest.approx(expected)


def test_a_class_only_predicted_counts_as_zero():
    # Class 2 is predicted but never labelled: a false positive, so it is in the mean with IoU 0.
    pred, labels = [[0, 2, 1, 1]], [[0, 0, 1, 1]]
    expected = (1 / 2 + 1 + 0) / 3
    assert seg(pred, labels)[0].item() == pytest.approx(expected)
    assert image_miou(torch.tensor(pred), torch.tensor(labels), 4) == pytest.approx(expected)


def test_per_class_iou_reports_an_absent_class_as_absent():
    _, iou = seg([[0, 0, 1, 1]], [[0, 0, 0, 1]])
    assert math.isnan(iou[2].item()) and math.isnan(iou[3].item())


def test_image_miou_of_an_image_with_only_ignored_pixels_is_nan():
    assert math.isnan(image_miou(torch.tensor([[0, 1]]), torch.tensor([[IGN, IGN]]), 4))


def test_miou_accumulates_pixels_over_batches_not_a_mean_of_batch_scores():
    miou, _ = segmentation_metrics(2)
    miou.update(torch.tensor([[0, 0, 0, 0]]), torch.tensor([[0, 0, 0, 0]]))   # per batch: 1.0
    miou.update(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[1, 1, 1, 1]]))   # per batch: (0 + 1/2) / 2
    # All pixels: class 0: 4 hits of 6; class 1: 2 of 4.
    assert miou.compute().item() == pytest.approx((4 / 6 + 2 / 4) / 2)


# -- depth ----------------------------------------------------------------------------------------------
def depth_metrics(pred, target, labels=None, max_depth=80.0):
    m = DepthMetrics(max_depth)
    shape = (1, 1, 1, len(target))
    m.update(torch.tensor(pred).view(shape), torch.tensor(target).view(shape),
             None if labels is None else torch.tensor(labels).view(1, 1, len(target)))
    return {k: v.item() for k, v in m.compute().items()}


def test_depth_metrics_by_hand():
    m = depth_metrics([10.0, 30.0], [10.0, 20.0])
    assert m["abs_rel"] == pytest.approx((0 + 10 / 20) / 2)
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 100) / 2))
    assert m["delta1"] == pytest.approx(1 / 2)                    # 30/20 = 1.5 is not within 1.25
    perfect = depth_metrics([5.0, 50.0], [5.0, 50.0])
    assert perfect == {"abs_rel": 0.0, "rmse": 0.0, "delta1": 1.0}


def test_depth_metrics_skip_sky_missing_depth_and_ignored_pixels():
    # Only the first pixel is valid: sky (at the far plane), no ground truth (0) and an ignored label
    # are skipped, however wrong the prediction there.
    pred = [10.0, 1.0, 70.0, 3.0]
    target = [10.0, 80.0, 0.0, 40.0]
    labels = [0, 7, 1, IGN]
    assert depth_metrics(pred, target, labels) == {"abs_rel": 0.0, "rmse": 0.0, "delta1": 1.0}
    without_labels = depth_metrics(pred, target)                 # the ignored pixel now counts
    assert without_labels["rmse"] == pytest.approx(math.sqrt((0 + 37 ** 2) / 2))


def test_depth_metrics_without_any_ground_truth_are_nan_not_perfect():
    m = depth_metrics([10.0, 20.0], [0.0, 80.0])
    assert set(m) == {"abs_rel", "rmse", "delta1"} and all(math.isnan(v) for v in m.values())


def test_depth_metrics_edges():
    # Depth below a metre is valid ground truth, and a prediction of exactly 1.25× the truth is not within δ<1.25.
    assert depth_metrics([0.5], [0.5]) == {"abs_rel": 0.0, "rmse": 0.0, "delta1": 1.0}
    assert depth_metrics([25.0], [20.0])["delta1"] == 0.0


def test_depth_metrics_accumulate_over_updates():
    pred, target = torch.tensor([10.0, 30.0, 12.0, 50.0]), torch.tensor([10.0, 20.0, 16.0, 40.0])
    once, twice = DepthMetrics(), DepthMetrics()
    once.update(pred.view(1, 1, 1, 4), target.view(1, 1, 1, 4))
    twice.update(pred[:2].view(1, 1, 1, 2), target[:2].view(1, 1, 1, 2))
    twice.update(pred[2:].view(1, 1, 1, 2), target[2:].view(1, 1, 1, 2))
    a, b = once.compute(), twice.compute()
    assert all(torch.allclose(a[k], b[k]) for k in a)


# -- what GIOAda logs at validation ---------------------------------------------------------------------
def test_validation_logs_the_miou_of_the_argmax_over_all_validation_pixels(tiny_kwargs):
    """val/miou is the mIoU of T's argmax against the labels, over the pixels of every batch, without the
    ignored ones and the classes seen nowhere; val/iou_k is class k's IoU."""
    torch.manual_seed(0)
    model = GIOAda(**tiny_kwargs)
    k = tiny_kwargs["num_classes"]
    images = torch.rand(4, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        pred = model(images)[0].argmax(1)
    # Labels that agree with T on most pixels, so the score is far from trivial; two batches that differ.
    labels = pred.clone()
    labels[0, :, :16] = (pred[0, :, :16] + 1) % k
    labels[2:, 8:] = 3
    labels[:, :2] = IGNORE_INDEX
    depths = torch.rand(4, 1, 32, 64) * 79 + 1
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(model, DataLoader(TensorDataset(images, labels, depths), batch_size=2))
    logged = trainer.callback_metrics

    valid = labels != IGNORE_INDEX
    p, t = pred[valid], labels[valid]
    ious = {}
    for c in range(k):
        union = ((p == c) | (t == c)).sum().item()
        if union:
            ious[c] = ((p == c) & (t == c)).sum().item() / union
    assert 0.05 < sum(ious.values()) / len(ious) < 0.95
    assert logged["val/miou"].item() == pytest.approx(sum(ious.values()) / len(ious), abs=1e-6)
    for c, iou in ious.items():
        assert logged[f"val/iou_{c}"].item() == pytest.approx(iou, abs=1e-6)


def test_predicted_classes_is_argmax():
    from gioada.inference import predicted_classes
    logits = torch.randn(2, 10, 16, 24)
    assert torch.equal(predicted_classes(logits), logits.argmax(1))
    assert torch.equal(predicted_classes(logits[0], 0), logits[0].argmax(0))
