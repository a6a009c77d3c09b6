"""Synthetic volumes with exact instance labels."""

from particleseg.synth.ellipsoids import packed_ellipsoids

__all__ = ["packed_ellipsoids"]
