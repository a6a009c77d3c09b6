"""Touching-particle augmentation: paste a training-set particle so that it touches one in a patch.

Touching particles are the hard case of the task and rare in real samples. With some probability
per training sample, a particle P of the patch and a particle D taken whole from the training set
are chosen, and D's image and labels are pasted beside P so that their surfaces share at least one
face. The labels are pasted hard; the image is blended with a Gaussian-blurred (sigma 1) mask of D
so that no seam shows. Where the patch carries a phase map, D's phases are pasted with its labels,
so a later re-rendering (:mod:`particleseg.transforms.appearance`) draws D like the patch's own
particles.

- :class:`ParticleTemplate`, :func:`extract_particles` (in
  :mod:`particleseg.transforms.particle_templates`): the particles D, cut out of training volumes
  once, before training;
- :func:`paste_touching`: one paste on numpy (Z, Y, X) patches;
- :class:`RandTouchingPasted`: the MONAI dict transform around it for the data pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import fastremap
import numba
import numpy as np
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import convert_to_dst_type, convert_to_numpy

from particleseg.io.phase_codes import MATERIAL0
from particleseg.targets import instance_to_border_core
from particleseg.transforms.particle_templates import (
    ParticleTemplate,
    check_volumes,
)

#: A particle is a paste target only if it has at least this share of the voxel count of the
#: largest particle in the patch (skips slivers cut by the patch edge).
MIN_TARGET_SHARE = 0.1


@dataclass
class PasteResult:
    """Output of :func:`paste_touching`.

    Attributes:
        image: (Z, Y, X) float image with D blended in.
        instances: (Z, Y, X) instance labels (input dtype), D's voxels set to ``pasted_id``.
        border_core: (Z, Y, X) uint8 border-core map of ``instances``.
        target_id: id of the particle P that D touches.
        pasted_id: id given to D (the input's largest id + 1).
        offset: (z, y, x) patch position of the template crop's first voxel: D's voxels are
            ``template.mask`` shifted by ``offset`` (those that fall inside the patch).
        phases: (Z, Y, X) uint8 phase map with D's phases on D's voxels, or None when no phase
            map was given.
    """

    image: np.ndarray
    instances: np.ndarray
    border_core: np.ndarray
    target_id: int
    pasted_id: int
    offset: tuple[int, int, int]
    phases: np.ndarray | None = None


def _overlaps(a: np.ndarray, a_lo: tuple, b: np.ndarray, b_lo: tuple) -> bool:
    """Whether bool arrays ``a`` and ``b``, with first voxels at ``a_lo`` and ``b_lo``, meet."""
    sa, sb = [], []
    for k in range(3):
        lo = max(a_lo[k], b_lo[k])
        hi = min(a_lo[k] + a.shape[k], b_lo[k] + b.shape[k])
        if hi <= lo:
            return False
        sa.append(slice(lo - a_lo[k], hi - a_lo[k]))
        sb.append(slice(lo - b_lo[k], hi - b_lo[k]))
    return bool((a[tuple(sa)] & b[tuple(sb)]).any())


def _clip_to_patch(offset: tuple, template_shape: tuple, patch_shape: tuple):
    """Template and patch slices of the part of a template at ``offset`` inside the patch."""
    t_box, p_box = [], []
    for k in range(3):
        lo = max(offset[k], 0)
        hi = min(offset[k] + template_shape[k], patch_shape[k])
        if hi <= lo:
            return None
        t_box.append(slice(lo - offset[k], hi - offset[k]))
        p_box.append(slice(lo, hi))
    return tuple(t_box), tuple(p_box)


def _ray_offsets(start, direction, max_steps: int):
    """Integer points met by the ray ``start + s * direction``, s >= 0, moving one axis at a time.

    A 3D voxel traversal (Amanatides-Woo) over unit cells centred on the integers, so that two
    consecutive points differ by one step along one axis. Yields tuples of 3 ints.
    """
    point = [round(float(c)) for c in start]
    step = [1 if d > 0 else -1 for d in direction]
    inv = [1.0 / abs(d) if d != 0 else math.inf for d in direction]
    # Ray parameter at which the ray leaves the current cell along each axis.
    t_next = [
        (0.5 + step[k] * (point[k] - float(start[k]))) * inv[k] if direction[k] != 0 else math.inf
        for k in range(3)
    ]
    yield tuple(point)
    for _ in range(max_steps):
        axis = min(range(3), key=t_next.__getitem__)
        point[axis] += step[axis]
        t_next[axis] += inv[axis]
        yield tuple(point)


@contextmanager
def _numba_single_thread():
    """Run numba kernels of the calling thread on one thread (restored on exit).

    The border-core update works on a small box, where waking a thread pool costs far more than
    the work (and DataLoader workers would oversubscribe the cores). The setting is per thread.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _target_geometry(instances: np.ndarray, target_id: int):
    """One particle's mask cropped to its box, the box's first voxel and the centroid."""
    mask = instances == target_id
    lo = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=others))
        lo.append(int(hit[0]))
        index = [slice(None)] * 3
        index[axis] = slice(int(hit[0]), int(hit[-1]) + 1)
        mask = mask[tuple(index)]  # narrowing axis by axis keeps the later passes small
    mask = np.ascontiguousarray(mask)
    n = np.count_nonzero(mask)
    centroid = np.array(
        [
            np.dot(mask.sum(axis=tuple(a for a in range(3) if a != axis)), np.arange(size)) / n
            for axis, size in enumerate(mask.shape)
        ]
    )
    return mask, tuple(lo), centroid + lo


def _random_direction(rng: np.random.Generator) -> np.ndarray:
    while True:
        v = rng.normal(size=3)
        norm = float(np.linalg.norm(v))
        if norm > 1e-6:
            return v / norm


def paste_touching(
    image: np.ndarray,
    instances: np.ndarray,
    border_core: np.ndarray,
    template: ParticleTemplate,
    rng: np.random.Generator,
    border_thickness: int = 3,
    max_tries: int = 10,
    min_inside_fraction: float = 0.5,
    phases: np.ndarray | None = None,
) -> PasteResult | None:
    """Paste a template particle D so that it touches a particle P of the patch.

    Each try picks P uniformly among the patch's particles that have at least
    :data:`MIN_TARGET_SHARE` of the voxel count of the largest one, and a uniform random
    direction. D's centroid is put on P's centroid and D slides outward along the direction,
    one axis step at a time, to the first integer offset where D's mask no longer overlaps P.
    The placement is kept if a voxel of D inside the patch shares a face with a voxel of P and
    at least ``min_inside_fraction`` of D's voxels are inside the patch (D may be cut by the patch
    edge); otherwise the next try starts.

    On success, D's voxels inside the patch get the new id ``instances.max() + 1``, overwriting
    whatever was there (D may cover part of a third particle, never P). The image inside the
    template's box becomes ``image * (1 - w) + template.image * w`` with
    ``w = max(gaussian_filter(mask, 1), mask)`` clipped to [0, 1]: D's voxels take D's image
    exactly (image and labels agree voxel for voxel) and the soft transition lies in the
    ~2-voxel shell just outside D, where the template's own surroundings fade in. The
    border-core map is recomputed only where it can change (D's box grown by
    ``border_thickness + 1``), so it equals ``instance_to_border_core(instances,
    border_thickness)`` of the whole patch when the input map was that of the input labels.

    Args:
        image: (Z, Y, X) float image (float32); not modified.
        instances: (Z, Y, X) integer (uint32) instance labels, 0 = background; not modified.
        border_core: (Z, Y, X) uint8 border-core map of ``instances``; not modified.
        template: the particle D to paste.
        rng: random generator for the target and the direction.
        border_thickness: border width of ``border_core``, in voxels.
        max_tries: number of target/direction draws before giving up.
        min_inside_fraction: least share of D's voxels that must land inside the patch.
        phases: (Z, Y, X) uint8 phase map of the patch, or None; not modified. D's voxels get
            the template's phases, or :data:`~particleseg.io.phase_codes.MATERIAL0` (the first
            mineral phase) when the template has none, so a rendering of the phases never
            loses a particle that the labels hold.

    Returns:
        :class:`PasteResult` with new arrays (image keeps its float dtype, float32 otherwise;
        instances keep their dtype; border_core is uint8), or None when the patch has no
        particle or no try gave a valid placement.
    """
    image, instances, border_core = check_volumes(image, instances, border_core)
    if phases is not None and np.shape(phases) != instances.shape:
        raise ValueError(
            f"phases must have the shape of instances {instances.shape}, got {np.shape(phases)}"
        )
    if border_thickness < 0:
        raise ValueError(f"border_thickness must be >= 0, got {border_thickness}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    if not 0.0 <= min_inside_fraction <= 1.0:
        raise ValueError(f"min_inside_fraction must be in [0, 1], got {min_inside_fraction}")
    if instances.dtype.kind == "i" and instances.size and instances.min() < 0:
        raise ValueError("instances must be non-negative")

    ids, counts = fastremap.unique(instances, return_counts=True)
    counts = counts[ids != 0]
    ids = ids[ids != 0]
    if not len(ids):
        return None
    new_id = int(ids.max()) + 1
    if new_id > np.iinfo(instances.dtype).max:
        raise ValueError(f"no id left for the pasted particle in instances dtype {instances.dtype}")
    candidates = ids[counts >= MIN_TARGET_SHARE * counts.max()]

    patch_shape = instances.shape
    tmask = template.mask
    tshape = tmask.shape
    t_centroid = template.centroid

    targets: dict[int, tuple] = {}  # id -> (cropped mask, first voxel, centroid)
    placement = None
    for _ in range(max_tries):
        target_id = int(candidates[rng.integers(len(candidates))])
        if target_id not in targets:
            targets[target_id] = _target_geometry(instances, target_id)
        pmask, p_lo, p_centroid = targets[target_id]
        direction = _random_direction(rng)
        # After this many unit-axis steps the template's box has left P's box for sure.
        max_steps = 2 * (sum(pmask.shape) + sum(tshape)) + 6
        offset = None
        for candidate in _ray_offsets(p_centroid - t_centroid, direction, max_steps):
            if not _overlaps(tmask, candidate, pmask, p_lo):
                offset = candidate
                break
        if offset is None:
            continue
        clipped = _clip_to_patch(offset, tshape, patch_shape)
        if clipped is None:
            continue
        t_box, p_box = clipped
        inside = tmask[t_box]
        if np.count_nonzero(inside) < min_inside_fraction * template.n_voxels:
            continue
        # A face contact inside the patch: D's in-patch part, moved by one voxel, meets P.
        in_lo = tuple(s.start for s in p_box)
        if any(
            _overlaps(inside, tuple(in_lo[k] + sign * (k == axis) for k in range(3)), pmask, p_lo)
            for axis in range(3)
            for sign in (1, -1)
        ):
            placement = (target_id, offset, t_box, p_box)
            break
    if placement is None:
        return None
    target_id, offset, t_box, p_box = placement
    inside = tmask[t_box]

    new_instances = instances.copy()
    new_instances[p_box][inside] = new_id

    out_dtype = image.dtype if np.issubdtype(image.dtype, np.floating) else np.float32
    new_image = image.astype(out_dtype, copy=True)
    w = template.weight[t_box]
    region = new_image[p_box]
    region *= 1 - w
    region += template.image[t_box] * w

    # Labels change only on D's voxels, so a voxel's border-core can change only within
    # border_thickness of them; recomputing it needs the labels within border_thickness of it.
    reach = math.ceil(border_thickness) + 1
    d_voxels = np.argwhere(inside)
    d_lo = d_voxels.min(axis=0) + np.array(in_lo)
    d_hi = d_voxels.max(axis=0) + 1 + np.array(in_lo)
    inner_lo = np.maximum(d_lo - reach, 0)
    inner_hi = np.minimum(d_hi + reach, patch_shape)
    outer_lo = np.maximum(inner_lo - reach, 0)
    outer_hi = np.minimum(inner_hi + reach, patch_shape)
    outer = tuple(slice(int(a), int(b)) for a, b in zip(outer_lo, outer_hi, strict=True))
    inner = tuple(slice(int(a), int(b)) for a, b in zip(inner_lo, inner_hi, strict=True))
    within = tuple(
        slice(int(a), int(b)) for a, b in zip(inner_lo - outer_lo, inner_hi - outer_lo, strict=True)
    )
    with _numba_single_thread():
        local = instance_to_border_core(
            np.ascontiguousarray(new_instances[outer]), border_thickness
        )
    new_border_core = np.array(border_core, dtype=np.uint8, copy=True)
    new_border_core[inner] = local[within]
    new_phases = None
    if phases is not None:
        new_phases = np.array(phases, dtype=np.uint8, copy=True)
        pasted = MATERIAL0 if template.phases is None else template.phases[t_box][inside]
        new_phases[p_box][inside] = pasted

    return PasteResult(
        image=new_image,
        instances=new_instances,
        border_core=new_border_core,
        target_id=target_id,
        pasted_id=int(new_id),
        offset=(int(offset[0]), int(offset[1]), int(offset[2])),
        phases=new_phases,
    )


class RandTouchingPasted(RandomizableTransform, MapTransform):
    """Dict transform: with probability ``prob``, paste a particle touching one of the patch.

    The image, border-core and instance entries are (1, Z, Y, X) numpy arrays or torch tensors
    (MONAI channel-first) and come back as the same kinds, dtypes and devices. A template is
    drawn uniformly and :func:`paste_touching` runs with a generator seeded from ``self.R``, so
    :meth:`set_random_state` makes the transform reproducible. A patch without particles, or a
    paste that finds no valid placement, is returned unchanged. A ``phases_key`` entry, when the
    data has one, gets D's phases (see :func:`paste_touching`).

    Args:
        templates: the particles D to paste (from :func:`extract_particles`); not empty.
        image_key: key of the image.
        label_key: key of the uint8 border-core map.
        instance_key: key of the integer instance labels.
        phases_key: key of the optional (1, Z, Y, X) uint8 phase map.
        prob: probability of pasting, per call.
        border_thickness: border width of the border-core map, in voxels.
        max_tries: target/direction draws per paste, see :func:`paste_touching`.
        min_inside_fraction: see :func:`paste_touching`.
        allow_missing_keys: if True, a sample lacking one of the keys is returned unchanged.
    """

    def __init__(
        self,
        templates: Sequence[ParticleTemplate],
        image_key: Hashable = "image",
        label_key: Hashable = "label",
        instance_key: Hashable = "instance",
        phases_key: Hashable = "phases",
        prob: float = 0.5,
        border_thickness: int = 3,
        max_tries: int = 10,
        min_inside_fraction: float = 0.5,
        allow_missing_keys: bool = False,
    ):
        MapTransform.__init__(self, (image_key, label_key, instance_key), allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        templates = list(templates)
        if not templates:
            raise ValueError("templates must hold at least one ParticleTemplate")
        if not all(isinstance(t, ParticleTemplate) for t in templates):
            raise ValueError("templates must all be ParticleTemplate instances")
        if border_thickness < 0:
            raise ValueError(f"border_thickness must be >= 0, got {border_thickness}")
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.templates = templates
        self.image_key = image_key
        self.label_key = label_key
        self.instance_key = instance_key
        self.phases_key = phases_key
        self.border_thickness = border_thickness
        self.max_tries = max_tries
        self.min_inside_fraction = min_inside_fraction
        self._template_index = 0
        self._seed = 0

    def randomize(self, data=None) -> None:
        """Draw whether to paste and, if so, the template and the paste's seed."""
        super().randomize(None)
        if not self._do_transform:
            return
        self._template_index = int(self.R.randint(len(self.templates)))
        self._seed = int(self.R.randint(0, 2**63 - 1, dtype=np.int64))

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        """Apply the transform to a sample dict; see the class docstring."""
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        keys = (self.image_key, self.label_key, self.instance_key)
        if any(k not in d for k in keys):
            if self.allow_missing_keys:
                return d
            missing = [k for k in keys if k not in d]
            raise KeyError(f"RandTouchingPasted: keys {missing} not in the data")
        arrays = []
        for k in keys:
            value = convert_to_numpy(d[k])
            if value.ndim != 4 or value.shape[0] != 1:
                raise ValueError(f"{k!r} must have shape (1, Z, Y, X), got {tuple(value.shape)}")
            arrays.append(value[0])
        image, border_core, instances = arrays
        phases = d.get(self.phases_key)
        result = paste_touching(
            image,
            instances,
            border_core,
            template=self.templates[self._template_index],
            rng=np.random.default_rng(self._seed),
            border_thickness=self.border_thickness,
            max_tries=self.max_tries,
            min_inside_fraction=self.min_inside_fraction,
            phases=None if phases is None else convert_to_numpy(phases)[0],
        )
        if result is None:
            return d
        for k, value in zip(
            keys, (result.image, result.border_core, result.instances), strict=True
        ):
            d[k] = convert_to_dst_type(value[None], dst=d[k])[0]
        if result.phases is not None:
            d[self.phases_key] = convert_to_dst_type(result.phases[None], dst=phases)[0]
        return d
