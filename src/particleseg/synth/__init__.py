"""Synthetic micro-CT of particles in resin, with exact instance labels.

- :func:`render_scene` (:mod:`.scene`): particles in a resin cylinder (or in a matrix filling the
  field of view) -> attenuation and labels;
- :func:`render_granular` (:mod:`.granular`): dense granular packings without resin;
- :func:`simulate_ct`, :func:`simulate_ct_fast` (:mod:`.ct`): the scanner;
- :func:`build_dataset` (:mod:`.dataset`), ``python -m particleseg.synth``: a dataset folder;
- :func:`packed_ellipsoids` (:mod:`.ellipsoids`): dense ellipsoid packs for benchmarks.
"""

from particleseg.synth.ct import CTParams, FastCTParams, simulate_ct, simulate_ct_fast, to_uint16
from particleseg.synth.dataset import SyntheticSample, build_dataset, make_sample, render_sample
from particleseg.synth.ellipsoids import packed_ellipsoids
from particleseg.synth.granular import GranularParams, render_granular
from particleseg.synth.scene import Scene, SceneParams, render_scene

__all__ = [
    "CTParams",
    "FastCTParams",
    "GranularParams",
    "Scene",
    "SyntheticSample",
    "SceneParams",
    "build_dataset",
    "make_sample",
    "packed_ellipsoids",
    "render_granular",
    "render_sample",
    "render_scene",
    "simulate_ct",
    "simulate_ct_fast",
    "to_uint16",
]
