"""`imagenet-sketch eval`: ImageNet classifiers scored on ImageNet-Sketch, with each library's own preprocessing.

The room reads: specs and model loading (`spec`, `models`, `hf`, `clip`), preprocessing (`preprocess`), the rows
(`data`), the engine seam (`job`) and its two engines (`local_engine`, `ray_engine`, sharing `batches` and
`partial`), what decides reuse (`identity`), metrics (`metrics`), outputs (`outputs`) and the API (`api`).
"""

from imagenet_sketch_tools.evaluation.api import Result, evaluate, evaluate_models
from imagenet_sketch_tools.evaluation.job import Engine, Settings
from imagenet_sketch_tools.evaluation.local_engine import LocalEngine
from imagenet_sketch_tools.evaluation.ray_engine import RayEngine, RayOptions  # imports Ray only when run
from imagenet_sketch_tools.evaluation.spec import Weights

__all__ = [
    "Engine",
    "LocalEngine",
    "RayEngine",
    "RayOptions",
    "Result",
    "Settings",
    "Weights",
    "evaluate",
    "evaluate_models",
]
