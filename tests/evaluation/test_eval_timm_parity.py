"""Parity with timm: on the same exported package, our input tensors and the logits of a fixed checkpoint equal
those of timm's own `create_dataset("hfds/...")` + `create_loader` (its prefetching eval loader)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import timm
import timm.data
import torch
from PIL import Image

import imagenet_sketch
from imagenet_sketch_tools.common.images import decode
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.dataset.sample import black_jpeg, sketch_jpeg
from imagenet_sketch_tools.dataset.zipwriter import write_zip
from imagenet_sketch_tools.evaluation import evaluate, models, spec
from imagenet_sketch_tools.evaluation.batches import input_batches
from imagenet_sketch_tools.evaluation.data import open_source
from imagenet_sketch_tools.evaluation.preprocess import TimmPreprocess, gray_channel, timm_loader
from imagenet_sketch_tools.hub import export

WNIDS = list(class_table()[0][::97])  # 11 classes spread over the table
BATCH = 8


def members():
    """Sketches of varied sizes and aspect ratios (smaller and larger than the crop), gray and colour JPEGs,
    and an all-black image, as the release has."""
    out = []
    for i, wnid in enumerate(WNIDS):
        for n in range(3):
            seed = i * 10 + n
            size = (90 + 37 * (seed % 7), 70 + 53 * (seed % 5))
            mode = "RGB" if seed % 3 == 1 else "L"
            content = black_jpeg("RGB", size) if seed == 4 else sketch_jpeg(seed, mode, size, strokes=12)
            out.append((f"sketch/{wnid}/sketch_{n}.JPEG", content))
    return out


@pytest.fixture
def package(tmp_path):
    """An exported hub package at a lower-case path (timm lower-cases hfds/ names) and a fixed checkpoint."""
    write_zip(members(), tmp_path / "sketches.zip")
    built = imagenet_sketch.load(str(tmp_path / "sketches.zip"), cache_dir=str(tmp_path / "cache"))
    directory = tmp_path / "pkg"
    export.export(built, directory, max_shard_size="60KB", progress=False)
    assert str(directory) == str(directory).lower() and len(list((directory / "data").iterdir())) > 1
    return directory


def checkpoint(tmp_path, name: str) -> str:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    path = str(tmp_path / f"{name}.pth")
    torch.save(model.state_dict(), path)
    return path


def timm_batches(directory, config, workers: int):
    """timm's own route, as its validate.py takes it (split 'train': the dataset has no 'validation')."""
    dataset = timm.data.create_dataset(f"hfds/{directory}", root=None, split="train")
    return list(timm_loader(dataset, config, BATCH, workers))


@pytest.mark.parametrize("name", ["test_resnet", "test_vit"])
def test_inputs_and_logits_equal_timms_loader(package, tmp_path, name):
    loaded = models.load(f"timm:{name}", spec.Weights(checkpoint=checkpoint(tmp_path, name)))
    module = loaded.module.eval()
    rows = open_source(str(package))
    selected = np.arange(len(rows))
    batches = sorted(input_batches(rows, selected, loaded.preprocess, BATCH, workers=2), key=lambda b: b.index)
    assert [batch.index for batch in batches] == list(range(len(batches)))
    ours = [(batch.rows, loaded.preprocess.on_device(batch.pixels, torch.device("cpu"))) for batch in batches]
    theirs = timm_batches(package, loaded.preprocess.config, workers=2)
    assert len(ours) == len(theirs) == -(-len(members()) // BATCH)
    for (batch_rows, pixels), (their_pixels, their_labels) in zip(ours, theirs):
        assert pixels.dtype == their_pixels.dtype == torch.float32
        assert torch.equal(pixels, their_pixels)  # bit for bit, every batch
        assert torch.equal(torch.from_numpy(rows.meta().labels[batch_rows]), their_labels)
        with torch.inference_mode():
            assert torch.equal(module(pixels), module(their_pixels))

    # and the run's predictions are timm's logits' top five
    result = evaluate(loaded, str(package), output=tmp_path / "out", batch_size=BATCH, workers=0, progress=False)
    with torch.inference_mode():
        logits = torch.cat([module(pixels) for pixels, _ in theirs])
    prob, top5 = logits.softmax(dim=1).topk(5, dim=1)
    predictions = pq.read_table(result.folder / "predictions.parquet")
    assert predictions.column("top5").to_pylist() == top5.tolist()
    assert np.array_equal(np.asarray(predictions.column("top5_prob").to_pylist(), np.float32), prob.numpy())


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(121, 97), (300, 161), (64, 200)])
def test_a_gray_image_transformed_as_one_channel_equals_timms_rgb_route(interpolation, size):
    config = {**spec.DEFAULT_DATA_CONFIG, "interpolation": interpolation, "input_size": (3, 96, 96)}
    preprocess = TimmPreprocess(config)
    gray = decode(sketch_jpeg(7, "L", size))[0]
    assert gray.mode == "L"
    rgb_route = preprocess.transform(gray.convert("RGB"))  # what timm's dataset hands its transform
    assert torch.equal(preprocess(gray), rgb_route)
    assert preprocess(gray).shape == (3, 96, 96)


@pytest.mark.parametrize("size", [(121, 97), (300, 161)])
def test_a_gray_sketch_saved_as_colour_jpeg_takes_the_gray_path_with_the_same_pixels(size):
    config = {**spec.DEFAULT_DATA_CONFIG, "input_size": (3, 96, 96)}
    preprocess = TimmPreprocess(config)
    buffer = io.BytesIO()
    decode(sketch_jpeg(11, "L", size))[0].convert("RGB").save(buffer, "JPEG", quality=90)
    colour = decode(buffer.getvalue())[0]
    # libjpeg decodes neutral chroma to R = G = B exactly
    assert colour.mode == "RGB" and gray_channel(colour) is not None
    assert torch.equal(preprocess(colour), preprocess.transform(colour.convert("RGB")))
    tinted = decode(sketch_jpeg(11, "RGB", size))[0]
    assert gray_channel(tinted) is None
    assert torch.equal(preprocess(tinted), preprocess.transform(tinted.convert("RGB")))


def test_other_modes_are_converted_to_rgb_first():
    preprocess = TimmPreprocess(spec.DEFAULT_DATA_CONFIG)
    buffer = io.BytesIO()
    Image.new("P", (50, 40), 3).save(buffer, "PNG")
    image = decode(buffer.getvalue())[0]
    assert torch.equal(preprocess(image), preprocess.transform(image.convert("RGB")))


def test_one_coloured_pixel_off_the_probe_grid_keeps_an_image_colour():
    """The sparse probe only rejects quickly; a pixel it never looks at still makes the image colour."""
    preprocess = TimmPreprocess({**spec.DEFAULT_DATA_CONFIG, "input_size": (3, 96, 96)})
    gray = np.tile(np.arange(0, 240, 2, dtype=np.uint8), (130, 1))
    pixels = np.repeat(gray[..., None], 3, axis=2)
    pixels[0, 0] = (10, 200, 30)  # the probe takes the pixel nearest each cell's centre, never a corner
    image = Image.fromarray(pixels, "RGB")
    probe = np.asarray(image.resize((image.width // 13, image.height // 17), Image.Resampling.NEAREST))
    assert (probe[..., 0] == probe[..., 1]).all() and (probe[..., 1] == probe[..., 2]).all()
    assert gray_channel(image) is None
    assert torch.equal(preprocess(image), preprocess.transform(image))
    assert gray_channel(Image.fromarray(np.repeat(gray[..., None], 3, axis=2), "RGB")) is not None
