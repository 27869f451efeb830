"""`imagenet-sketch eval`: ImageNet classifiers scored on ImageNet-Sketch, with each library's own preprocessing."""

from .ray_engine import RayOptions, evaluate_models_on_ray  # imports Ray only when called
from .run import evaluate, evaluate_models

__all__ = ["RayOptions", "evaluate", "evaluate_models", "evaluate_models_on_ray"]
