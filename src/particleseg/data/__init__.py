"""Training data: sample preparation and caching, patch sampling, folds, the DataModule."""
