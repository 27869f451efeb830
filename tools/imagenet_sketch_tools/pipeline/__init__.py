"""The authors' pipeline, runnable again: collect -> review -> augment -> package -> audit."""
