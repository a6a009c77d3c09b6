"""Inference: sliding-window prediction of border-core probabilities (chunked runs: issue 5)."""
