"""particleseg: out-of-the-box 3D instance segmentation of mineral particles in micro-CT scans.

Pipeline stages live in subpackages (see DESIGN.md): ``io``, ``synth``, ``targets``, ``metrics``,
``baselines``; the stages that need torch (``transforms``, ``data``, ``models``, ``inference``)
are imported only by the entry points that use them.
"""

__version__ = "0.1.0"

from particleseg.numba_cache import ensure_numba_cache_dir

# A read-only install still keeps its compiled kernels (particleseg/numba_cache.py).
ensure_numba_cache_dir()
