"""Image analysis without a network (numpy/scipy/scikit-image only; never imports torch).

``estimate_particle_size(image)`` estimates the mean particle diameter of a scan in voxels from
the image alone, for ``particle_size=auto``.
"""

from particleseg.analysis.particle_size import ParticleSizeEstimate, estimate_particle_size

__all__ = ["ParticleSizeEstimate", "estimate_particle_size"]
