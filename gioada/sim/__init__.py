"""The built-in driving-scene simulator: KITTI-like scenes with pixel-perfect labels and metric depth,
in a clean source domain and a shifted, photograph-like target domain."""
from .render import Sample, render
from .scene import CAMERA_HEIGHT, FAR_DEPTH, Scene, make_scene
from .shift import COMPONENTS, MAX_STRENGTH, Shift

__all__ = ["CAMERA_HEIGHT", "COMPONENTS", "FAR_DEPTH", "MAX_STRENGTH", "Sample", "Scene", "Shift", "make_scene",
           "render"]
