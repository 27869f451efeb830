"""`imagenet-sketch eval`: ImageNet classifiers scored on ImageNet-Sketch, with each library's own preprocessing."""

from imagenet_sketch_tools.evaluation.run import evaluate, evaluate_models

__all__ = ["evaluate", "evaluate_models"]
