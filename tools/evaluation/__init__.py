"""`imagenet-sketch eval`: ImageNet classifiers scored on ImageNet-Sketch, with each library's own preprocessing."""
