"""Intensity and particle-size normalization, augmentations and the touching-particle paste.

Pure numpy/torch functions first, thin MONAI-style dict transforms around them for the pipeline.
"""
