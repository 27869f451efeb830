"""`imagenet-sketch eval`: ImageNet classifiers scored on ImageNet-Sketch, with each library's own preprocessing."""

from imagenet_sketch_tools.evaluation.ray_engine import (  # imports Ray only when called
    RayOptions,
    evaluate_models_on_ray,
)
from imagenet_sketch_tools.evaluation.run import evaluate, evaluate_models

__all__ = ["RayOptions", "evaluate", "evaluate_models", "evaluate_models_on_ray"]
