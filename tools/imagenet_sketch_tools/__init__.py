"""Everything around the ImageNet-Sketch builder, one subpackage per concern; imports point one way:

`cli` (the `imagenet-sketch` command) -> the features (`fetch`, `hub`, `inspection`, `pipeline`, `evaluation`)
-> `dataset` (the dataset itself: classes, release facts, archives, sources, the sample) -> `common` (helpers).
"""

# From the repository root `tools.imagenet_sketch_tools` is importable too, as a second copy of every module
# (two UserError classes, two caches): refuse it, so each module exists once, under one name.
if __name__ != "imagenet_sketch_tools":
    raise ImportError(f"import imagenet_sketch_tools, not {__name__}: the package is installed under that name")
