"""Everything around the ImageNet-Sketch builder, one subpackage per concern; imports point one way:

`cli` (the `imagenet-sketch` command) -> the features (`fetch`, `hub`, `inspection`, `pipeline`, `evaluation`)
-> `dataset` (the dataset itself: classes, release facts, archives, sources, the sample) -> `common` (helpers).
"""
