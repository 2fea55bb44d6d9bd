"""Numbers that several parts of gioada must agree on, defined once.

``FAR_DEPTH`` is the far plane in metres: the simulator renders sky (and anything beyond) at exactly this
depth, the networks scale and clamp depth by it, the depth metrics exclude pixels at it (sky, as in
KITTI's evaluation) and the depth colour maps end there. A model's own ``max_depth`` hyperparameter
defaults to it; change it here and every part moves together.

``COLLAPSE_MARGIN``: a run *collapsed* when its target mIoU lies more than this many points below its
reference: across seeds, the row's median (``gioada.ablation.collapses``); during a fine-tune, the best it
has reached (the app's collapse warning).
"""
from __future__ import annotations

FAR_DEPTH = 80.0  # metres
COLLAPSE_MARGIN = 10.0  # mIoU points
