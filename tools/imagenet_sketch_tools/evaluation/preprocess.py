"""Image bytes to model input, with each library's own eval transform, run in the loader's worker processes.

Two shapes: `TimmPreprocess` gives uint8 pixels exactly as timm's prefetching loader does (`create_transform(...,
use_prefetcher=True)`) and normalises on the device as timm's `PrefetchLoader` does, so tensors equal timm's;
`TensorPreprocess` wraps a transform that gives the normalised float tensor itself (torchvision weights,
transformers image processors, open_clip).

A preprocess's `stage` names its uint8 image (after decode, resize and crop): models with equal stages get
the same uint8 pixels for every image, so a run decodes each image once for all of them (`groups`), and an input
cache keeps those pixels (`input_cache`). None: no uint8 stage another model can share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageChops


def gray_channel(image: Image.Image) -> Image.Image | None:
    """The one channel of an RGB image whose R = G = B at every pixel (as a JPEG of gray content decodes:
    libjpeg's chroma is exactly neutral there), else None. A sparse grid of pixels, picked by a nearest-neighbour
    resize (no arithmetic), is checked first, so a colour image costs almost nothing; then every pixel, in C."""
    width, height = image.size
    probe = np.asarray(image.resize((max(1, width // 13), max(1, height // 17)), Image.Resampling.NEAREST))
    if not ((probe[..., 0] == probe[..., 1]).all() and (probe[..., 1] == probe[..., 2]).all()):
        return None
    red, green, blue = image.split()
    if ImageChops.difference(red, green).getbbox() or ImageChops.difference(green, blue).getbbox():
        return None
    return red


class TimmPreprocess:
    """timm's eval transform with the prefetcher's conventions: uint8 CHW out, normalised on the device.

    A grayscale image is transformed as one channel and expanded to three afterwards: Pillow resizes each
    band with the same integer arithmetic, so the pixels equal those of `convert('RGB')` first (a test checks
    it) for a third of the resampling work. Every other mode is converted to RGB first, as timm's dataset does;
    an RGB image whose three channels are equal (a gray sketch saved as a colour JPEG) then takes the gray path.
    """

    def __init__(self, config: dict[str, Any]):
        from timm.data.transforms_factory import create_transform  # the eval extra, as torch

        self.config = dict(config)
        self.input_size = tuple(config["input_size"])
        self.transform: Any = create_transform(  # one transform: is_training=False
            input_size=self.input_size,
            is_training=False,
            use_prefetcher=True,  # no ToTensor/Normalize: uint8 out, as timm's own eval loader
            interpolation=config["interpolation"],
            mean=config["mean"],
            std=config["std"],
            crop_pct=config["crop_pct"],
            crop_mode=config.get("crop_mode", "center"),
        )

    @property
    def stage(self) -> tuple:
        """What decides the uint8 pixels (mean and std do not: they are applied on the device). The gray path
        below gives the pixels of the RGB path, so it is no part of it."""
        crop_mode = self.config.get("crop_mode", "center")
        interpolation = self.config["interpolation"]
        return ("timm", tuple(self.input_size), interpolation, float(self.config["crop_pct"]), crop_mode)

    def __call__(self, image: Image.Image):
        import torch  # the eval extra: a preprocess object exists only once a model is loaded

        if image.mode != "L":
            if image.mode != "RGB":  # as timm's dataset does; an RGB image is used as it is (convert would copy it)
                image = image.convert("RGB")
            gray = gray_channel(image)
            image = image if gray is None else gray  # R = G = B everywhere: the same pixels for a third of the work
        pixels = self.transform(image)  # uint8 CHW: a tensor (timm >= 1.0.10) or an array (older timm)
        pixels = pixels if isinstance(pixels, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(pixels))
        if pixels.ndim == 2:
            pixels = pixels[None]
        return pixels.expand(3, -1, -1) if pixels.shape[0] == 1 else pixels

    def collate(self, images: list):
        import torch  # the eval extra: a preprocess object exists only once a model is loaded

        if not images:
            return torch.empty((0, *self.input_size), dtype=torch.uint8)
        return torch.stack(images)

    def to_device(self, batch, device):
        """The uint8 batch on the device: a quarter of float32's bytes cross (from pinned memory on CUDA, where
        the loader pinned it, so the copy runs asynchronously)."""
        return batch.to(device, non_blocking=True)

    def normalise(self, moved):
        """(uint8 - 255 mean) / (255 std) in float32 on the batch's device, the operations of timm's
        PrefetchLoader, in its order; `moved` is left as it is (each model of a group normalises its own copy)."""
        import torch  # the eval extra: a preprocess object exists only once a model is loaded

        mean = torch.tensor([x * 255 for x in self.config["mean"]], device=moved.device).view(1, 3, 1, 1)
        std = torch.tensor([x * 255 for x in self.config["std"]], device=moved.device).view(1, 3, 1, 1)
        return moved.float().sub_(mean).div_(std)

    def on_device(self, batch, device):
        """The model's input on `device`: the uint8 batch moved, then normalised there."""
        return self.normalise(self.to_device(batch, device))


class TensorPreprocess:
    """A library transform that takes an RGB PIL image and gives the normalised float CHW tensor."""

    stage = None  # float pixels out of a library's own transform: no uint8 stage to share

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image: Image.Image):
        return self.transform(image.convert("RGB"))

    def collate(self, tensors: list):
        import torch  # the eval extra: a preprocess object exists only once a model is loaded

        if not tensors:
            return torch.empty(0)
        return torch.stack(tensors)

    def to_device(self, batch, device):
        return batch.to(device, non_blocking=True)

    def normalise(self, moved):
        return moved  # the library's transform normalised it already

    def on_device(self, batch, device):
        return self.to_device(batch, device)


def timm_loader(dataset, config: dict, batch_size: int, workers: int):
    """timm's own eval loader (prefetching, on the CPU) for `dataset` with a data `config`: the route that
    `TimmPreprocess` reproduces, which the parity tests and the benchmark compare against."""
    import timm.data.loader  # the eval extra: the parity tests and the benchmark have it
    import torch  # as timm

    return timm.data.loader.create_loader(
        dataset,
        input_size=config["input_size"],
        batch_size=batch_size,
        use_prefetcher=True,
        interpolation=config["interpolation"],
        mean=config["mean"],
        std=config["std"],
        num_workers=workers,
        crop_pct=config["crop_pct"],
        crop_mode=config["crop_mode"],
        device=torch.device("cpu"),
    )
