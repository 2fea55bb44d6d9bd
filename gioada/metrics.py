"""Segmentation and depth metrics, as torchmetrics ``Metric``s so they sync across DDP ranks."""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.classification import MulticlassJaccardIndex

from .classes import IGNORE_INDEX
from .constants import FAR_DEPTH


def segmentation_metrics(num_classes: int, **kwargs) -> tuple[MulticlassJaccardIndex, MulticlassJaccardIndex]:
    """(mIoU, per-class IoU) over all pixels seen, ignoring ``IGNORE_INDEX``; ``kwargs`` go to torchmetrics.

    A class in neither the predictions nor the labels is absent: the mIoU leaves it out, and its per-class
    IoU is NaN (not 0, which would read as "always wrong")."""
    return (MulticlassJaccardIndex(num_classes, average="macro", ignore_index=IGNORE_INDEX, **kwargs),
            MulticlassJaccardIndex(num_classes, average="none", ignore_index=IGNORE_INDEX,
                                   zero_division=float("nan"), **kwargs))


class DepthMetrics(Metric):
    """Abs rel, RMSE (metres) and δ<1.25 over pixels with valid ground truth (0 < depth < max_depth).

    Sky (at the far plane) is excluded, as in KITTI's depth evaluation.
    """

    full_state_update = False

    def __init__(self, max_depth: float = FAR_DEPTH, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_depth = max_depth
        for name in ("abs_rel", "sq_err", "delta1", "count"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """pred, target: B×1×H×W metres; labels (optional) B×H×W, ignored pixels are skipped."""
        valid = (target > 0) & (target < self.max_depth * 0.999)
        if labels is not None:
            valid &= (labels != IGNORE_INDEX).unsqueeze(1)
        p, t = pred[valid].double().clamp(min=1e-3), target[valid].double()
        self.abs_rel += ((p - t).abs() / t).sum()
        self.sq_err += ((p - t) ** 2).sum()
        self.delta1 += (torch.maximum(p / t, t / p) < 1.25).double().sum()
        self.count += t.numel()

    def compute(self) -> dict[str, torch.Tensor]:
        if self.count == 0:  # no depth ground truth (KITTI, Cityscapes): not a perfect score, no score
            nan = torch.tensor(float("nan"), dtype=torch.float64, device=self.count.device)
            return {"abs_rel": nan, "rmse": nan, "delta1": nan}
        n = self.count
        return {"abs_rel": self.abs_rel / n, "rmse": (self.sq_err / n).sqrt(), "delta1": self.delta1 / n}


def confusion(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """K×K pixel counts (rows: truth, columns: prediction) of a class map H×W against labels H×W; ignored
    pixels left out. Confusions add up, so a set of images can be scored pooled, as the tables are."""
    valid = labels != IGNORE_INDEX
    k = num_classes
    return np.bincount((labels[valid] * k + pred[valid]).cpu().numpy(), minlength=k * k).reshape(k, k)


def miou_of(conf: np.ndarray) -> float:
    """Mean IoU (0..1) of a confusion matrix, over the classes present in the truth or the prediction
    (NaN when there is none)."""
    inter, union = np.diag(conf), conf.sum(0) + conf.sum(1) - np.diag(conf)
    present = union > 0
    return float(np.mean(inter[present] / union[present])) if present.any() else float("nan")


def image_miou(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """mIoU of one prediction H×W against labels H×W, over the classes present in either."""
    return miou_of(confusion(pred, labels, num_classes))
