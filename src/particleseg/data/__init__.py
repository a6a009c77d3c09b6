"""Training data: per-sample preparation and caching, patch sampling, cross-validation folds and the
Lightning DataModule over a ``dataset.json``."""
