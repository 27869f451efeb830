"""Everything around the ImageNet-Sketch builder: CLI, archive access, downloads, hub export, pipeline."""
