"""Particle geometry for the independent OOD split, written apart from the training generator.

Nothing here comes from :mod:`particleseg.synth`'s shapes, placement or scene code. Three
sources of grains, each a *partition* (adjacent labelled regions) that the shared steps then
deform, select and erode into separate or touching particles:

- :func:`voronoi_partition`: cells of a Voronoi tessellation of random seeds drawn with a
  spatially varying density (angular, crushed-ore-like fragments of a range of sizes);
- :func:`gravity_sphere_partition`: porespy's ``pseudo_gravity_packing`` of spheres of three
  radii settled at the bottom of the container, split back into spheres by a watershed;
- :func:`blob_partition`: porespy's ``blobs`` (thresholded Gaussian-filtered noise) split into
  grains by porespy's SNOW watershed (``snow_partitioning``).

Then :func:`displace_labels` (a smooth random warp), :func:`select_inside` (grains wholly inside
the container, a random subset), :func:`erode_rough` (gaps opened where grains meet, to a
rough per-grain depth; touch-prone grains keep contact patches with each other; free surfaces
roughened) and :func:`finalize_labels` (one 6-connected piece per grain, ids 1..N).
:func:`attenuation_map` turns the labels into an attenuation volume: matrix, container wall,
bubbles, several materials and intergrown second phases. Arrays are (Z, Y, X); the container is
a cylinder along Z.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

MATRIX_MU = {"resin": 0.004, "water": 0.0055, "air": 0.0}
"""Attenuation (1/voxel) of the matrix between the grains."""
WALL_MU = 0.0065
"""Attenuation (1/voxel) of the container wall (a plastic tube)."""


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def container_mask(shape: tuple[int, int, int], radius_fraction: float) -> np.ndarray:
    """Inside of a cylindrical container along Z.

    Args:
        shape: (Z, Y, X) volume shape.
        radius_fraction: radius as a fraction of half the smaller of Y and X.

    Returns:
        (Z, Y, X) bool, True inside the cylinder.
    """
    nz, ny, nx = shape
    radius = radius_fraction * min(ny, nx) / 2.0
    yy, xx = np.ogrid[:ny, :nx]
    disk = (yy - (ny - 1) / 2.0) ** 2 + (xx - (nx - 1) / 2.0) ** 2 < radius**2
    return np.broadcast_to(disk, shape).copy()


def smooth_noise(shape: tuple[int, ...], scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field of unit standard deviation.

    Args:
        shape: output shape.
        scale_px: correlation length in voxels (Gaussian filter sigma of white noise).
        rng: random generator.

    Returns:
        float32 array of ``shape``, mean about 0, std 1.
    """
    field = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), scale_px)
    return ((field - field.mean()) / max(float(field.std()), 1e-12)).astype(np.float32)


def voronoi_partition(
    shape: tuple[int, int, int],
    mean_diameter_px: float,
    density_contrast: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Voronoi tessellation of random seeds, seed density varying smoothly in space.

    Args:
        shape: (Z, Y, X) volume shape.
        mean_diameter_px: equivalent diameter of a cell of average volume, in voxels.
        density_contrast: spread of the seed density (0: uniform; 1: regions up to e^2 times
            denser than others), which spreads the cell sizes.
        rng: random generator.

    Returns:
        (Z, Y, X) uint32 cell ids 1..n, every voxel in one cell.
    """
    n_voxels = int(np.prod(shape))
    n_seeds = max(2, round(n_voxels / (np.pi / 6.0 * mean_diameter_px**3)))
    density = np.exp(density_contrast * smooth_noise(shape, 2.0 * mean_diameter_px, rng))
    flat = density.ravel().astype(np.float64)
    idx = rng.choice(n_voxels, size=min(n_seeds, n_voxels), replace=False, p=flat / flat.sum())
    seeds = np.zeros(n_voxels, np.uint32)
    seeds[idx] = np.arange(1, len(idx) + 1, dtype=np.uint32)
    seeds = seeds.reshape(shape)
    nearest = ndi.distance_transform_edt(seeds == 0, return_distances=False, return_indices=True)
    return seeds[tuple(nearest)]


def gravity_sphere_partition(
    container: np.ndarray,
    mean_diameter_px: float,
    fill: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Spheres of three radii settled under gravity (toward Z = 0) by porespy, one id each.

    Args:
        container: (Z, Y, X) bool, where spheres may go.
        mean_diameter_px: middle sphere diameter in voxels (the others are 1.35x and 0.7x).
        fill: fraction of the container volume to fill with spheres (porespy's ``phi``,
            rescaled to the container), shared between the three radii.
        rng: random generator (seeds porespy's numba generator).

    Returns:
        (Z, Y, X) uint32 sphere ids 1..n (0 elsewhere). Spheres overlap their neighbours by
        about a fifth of the radius (porespy's negative clearance) and are split by a watershed
        of the distance map from their centres, so neighbours share a contact face.
    """
    import porespy as ps
    from skimage.segmentation import watershed

    share = container.mean()
    occupied = ~container
    out = np.zeros(container.shape, np.uint32)
    for k, factor in enumerate((1.35, 1.0, 0.7)):
        radius = max(2, round(factor * mean_diameter_px / 2.0))
        placed = ps.generators.pseudo_gravity_packing(
            im=occupied,
            r=radius,
            clearance=-max(1, round(radius / 5)),
            axis=0,
            phi=fill * share / 3.0,
            maxiter=5000,
            seed=_seed(rng),
            value=k + 2,
        )
        mask = (placed == k + 2) & container
        occupied = occupied | mask
        dist = ndi.distance_transform_edt(mask)
        markers, n = ndi.label(dist >= radius - 0.5)
        regions = watershed(-dist, markers, mask=mask)
        out[regions > 0] = regions[regions > 0].astype(np.uint32) + out.max()
    return out


def blob_partition(
    container: np.ndarray,
    mean_diameter_px: float,
    solid_fraction: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Grains of porespy's ``blobs`` solid, split by porespy's SNOW watershed.

    The blob field (porespy's Gaussian-filtered noise, made uniform on [0, 1]) is thresholded
    at ``solid_fraction`` deep inside the container, lower within one grain diameter of its
    wall and at 0 within 4 voxels of it, so grains near the wall come out smaller instead of
    cut flat.

    Args:
        container: (Z, Y, X) bool inside of the container.
        mean_diameter_px: sets the blob scale (porespy's blobiness = 0.09 x mean(shape) /
            mean_diameter_px; about the mean equivalent diameter of the grains).
        solid_fraction: fraction of the volume that is solid before the split, away from
            the wall.
        rng: random generator (seeds porespy, whose global numpy state is restored after).

    Returns:
        (Z, Y, X) uint32 grain ids 1..n (0 in the pores).
    """
    import porespy as ps

    shape = container.shape
    blobiness = max(0.2, 0.09 * float(np.mean(shape)) / mean_diameter_px)
    state = np.random.get_state()  # noqa: NPY002 - porespy's blobs seeds the global state
    try:
        field = ps.generators.blobs(
            list(shape),
            porosity=None,
            blobiness=blobiness,
            parallel_kw={"divs": 1},
            seed=_seed(rng),
            periodic=False,
        )
    finally:
        np.random.set_state(state)  # noqa: NPY002
    wall = ndi.distance_transform_edt(container) - 4.0  # room for the warp
    taper = np.clip(wall / mean_diameter_px, 0.0, 1.0)
    solid = np.asarray(field) < solid_fraction * np.sqrt(taper)
    result = ps.filters.snow_partitioning(solid, r_max=max(3, round(mean_diameter_px / 4)))
    return np.asarray(result.regions * solid, np.uint32)


def displace_labels(
    labels: np.ndarray, amplitude_px: float, scale_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Warp labels by a smooth random displacement field (nearest-neighbour lookup).

    Args:
        labels: (Z, Y, X) integer labels.
        amplitude_px: standard deviation of each displacement component, in voxels.
        scale_px: correlation length of the field, in voxels.
        rng: random generator.

    Returns:
        (Z, Y, X) labels of the same dtype (a label may come out in several pieces; see
        :func:`finalize_labels`).
    """
    if amplitude_px <= 0:
        return labels.copy()
    grid = np.indices(labels.shape, dtype=np.float32)
    coords = [g + amplitude_px * smooth_noise(labels.shape, scale_px, rng) for g in grid]
    return ndi.map_coordinates(labels, coords, order=0, mode="nearest").astype(labels.dtype)


def select_inside(
    labels: np.ndarray, allowed: np.ndarray, keep_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Keep the labels lying wholly inside ``allowed``, then a random subset of them.

    Args:
        labels: (Z, Y, X) integer labels.
        allowed: (Z, Y, X) bool region (a label with any voxel outside it is dropped).
        keep_fraction: fraction of the remaining labels kept at random.
        rng: random generator.

    Returns:
        (Z, Y, X) labels with the others set to 0 (ids not renumbered).
    """
    n = int(labels.max())
    outside = np.zeros(n + 1, bool)
    outside[np.unique(labels[~allowed])] = True
    keep = ~outside & (rng.random(n + 1) < keep_fraction)
    keep[0] = False
    return np.where(keep[labels], labels, 0).astype(labels.dtype)


def erode_rough(
    labels: np.ndarray,
    depth: np.ndarray,
    roughness_px: float,
    scale_px: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Open gaps where grains meet, and roughen their free surfaces.

    Near a contact with another grain, a voxel of grain ``l`` goes if its distance to the
    contact is below ``depth[l] + roughness_px * |noise|``; for a grain with depth 0 the
    threshold is ``roughness_px * noise`` instead, so two such neighbours keep contact patches
    where the noise is negative. On free surfaces, voxels go where ``noise > 1`` to a depth of
    ``roughness_px * (noise - 1)``. ``noise`` is one smooth random field of unit std.

    Args:
        labels: (Z, Y, X) integer labels.
        depth: (labels.max() + 1,) float gap depth per label, in voxels (0: touch-prone).
        roughness_px: amplitude of the depth noise, in voxels.
        scale_px: correlation length of the noise, in voxels.
        rng: random generator.

    Returns:
        (Z, Y, X) labels of the same dtype.
    """
    from skimage.segmentation import find_boundaries

    grains = labels > 0
    surface = find_boundaries(labels, connectivity=1, mode="inner") & grains
    free = find_boundaries(grains, connectivity=1, mode="inner") & grains
    contact = surface & ~free
    contact |= surface & ndi.binary_dilation(contact)  # a contact voxel seen from both sides
    noise = smooth_noise(labels.shape, scale_px, rng)
    d = np.asarray(depth, np.float32)[labels]
    near = np.where(d > 0, d + roughness_px * np.abs(noise), roughness_px * noise)
    gone = ndi.distance_transform_edt(~contact).astype(np.float32) < near
    gone |= ndi.distance_transform_edt(~free).astype(np.float32) < roughness_px * (noise - 1.0)
    return np.where(grains & ~gone, labels, 0).astype(labels.dtype)


def finalize_labels(labels: np.ndarray, min_voxels: int) -> np.ndarray:
    """Exact instance labels: largest 6-connected piece of each label, small ones dropped.

    Args:
        labels: (Z, Y, X) integer labels.
        min_voxels: labels whose largest piece is smaller are removed.

    Returns:
        (Z, Y, X) uint32 labels, ids 1..N consecutive in order of the input ids, each one
        6-connected piece.
    """
    import cc3d

    pieces = cc3d.connected_components(labels, connectivity=6, out_dtype=np.uint64)
    sizes = np.bincount(pieces.ravel())
    parent = np.zeros(len(sizes), np.int64)
    parent[pieces.ravel()] = labels.ravel()
    order = np.lexsort((-sizes, parent))  # by parent id, largest piece first
    first = np.ones(len(order), bool)
    first[1:] = parent[order][1:] != parent[order][:-1]
    best = order[first & (parent[order] > 0) & (sizes[order] >= min_voxels)]
    new_id = np.zeros(len(sizes), np.uint32)
    new_id[best] = np.arange(1, len(best) + 1, dtype=np.uint32)  # best is sorted by parent
    return new_id[pieces]


def touching_fraction(labels: np.ndarray) -> float:
    """Fraction of the particles sharing a face (6-neighbours) with another particle.

    Args:
        labels: (Z, Y, X) integer labels, 0 = background.

    Returns:
        A float in [0, 1] (0 if there are no particles).
    """
    n = int(labels.max())
    if n == 0:
        return 0.0
    touching = np.zeros(n + 1, bool)
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)[:-1].ravel()
        b = np.moveaxis(labels, axis, 0)[1:].ravel()
        contact = (a > 0) & (b > 0) & (a != b)
        touching[a[contact]] = True
        touching[b[contact]] = True
    present = np.bincount(labels.ravel(), minlength=n + 1)[1:] > 0
    return float(touching[1:][present].mean()) if present.any() else 0.0


def attenuation_map(
    labels: np.ndarray,
    container: np.ndarray,
    material_mu: np.ndarray,
    matrix_mu: float,
    intergrown_fraction: float,
    n_bubbles: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Attenuation of the phantom: matrix, wall, bubbles, grains of several materials.

    Every grain gets one material (with a +-3% grain-to-grain variation); a fraction of them
    is intergrown with another material (1.5x its own if there is only one) where a smooth
    noise field is high. Bubbles (air
    balls, radius 2-6 voxels) go into the matrix away from the grains. The wall is a 2-voxel
    tube around the container.

    Args:
        labels: (Z, Y, X) uint32 particle ids 1..N.
        container: (Z, Y, X) bool inside of the container.
        material_mu: (m,) float attenuation of each material, 1/voxel.
        matrix_mu: attenuation of the matrix, 1/voxel.
        intergrown_fraction: fraction of grains holding a second material.
        n_bubbles: number of bubbles tried.
        rng: random generator.

    Returns:
        ``(mu, grain_material)``: (Z, Y, X) float32 attenuation (0 outside the wall) and the
        (N + 1,) int material index of each grain (-1 for the background entry 0).
    """
    n = int(labels.max())
    material_mu = np.asarray(material_mu, np.float32)
    grain_material = np.concatenate([[-1], rng.integers(len(material_mu), size=n)])
    grain_mu = np.zeros(n + 1, np.float32)
    grain_mu[1:] = material_mu[grain_material[1:]] * rng.uniform(0.97, 1.03, n)
    m = len(material_mu)
    other = (grain_material[1:] + rng.integers(1, max(m, 2), size=n)) % m  # another material
    second = np.zeros(n + 1, np.float32)
    second[1:] = np.where(other == grain_material[1:], 1.5 * grain_mu[1:], material_mu[other])
    intergrown = np.zeros(n + 1, bool)
    intergrown[1:] = rng.random(n) < intergrown_fraction
    wall = ndi.binary_dilation(container, ndi.generate_binary_structure(3, 1), 2) & ~container
    mu = np.where(container, np.float32(matrix_mu), np.float32(0.0))
    mu[wall] = WALL_MU
    if matrix_mu > 0:
        far = ndi.distance_transform_edt(container & (labels == 0))
        zz, yy, xx = np.indices(labels.shape, sparse=True)
        for _ in range(n_bubbles):
            radius = rng.uniform(2.0, 6.0)
            candidates = np.flatnonzero(far.ravel() > radius + 1)
            if len(candidates) == 0:
                break
            cz, cy, cx = np.unravel_index(rng.choice(candidates), labels.shape)
            ball = (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            mu[ball & (labels == 0) & container] = 0.0
    inside = labels > 0
    mu[inside] = grain_mu[labels[inside]]
    texture = smooth_noise(labels.shape, 2.5, rng) > 0.6
    mixed = inside & intergrown[labels] & texture
    mu[mixed] = second[labels[mixed]]
    return mu.astype(np.float32), grain_material


def make_geometry(
    shape: tuple[int, int, int], family: str, params: Mapping, rng: np.random.Generator
) -> np.ndarray:
    """Grains of one geometry family, deformed, selected, eroded and made exact.

    Args:
        shape: (Z, Y, X) volume shape.
        family: ``"voronoi"``, ``"gravity"`` or ``"blobs"``.
        params: the drawn geometry settings (``size_px``, ``container_radius``,
            ``keep_fraction``, ``fill``, ``density_contrast``, ``deformation_px``,
            ``touching``, ``erosion_px``, ``roughness_px``, ``min_voxels``), as in
            ``conf/synth/ood_independent.yaml``.
        rng: random generator.

    Returns:
        (Z, Y, X) uint32 particle ids 1..N, each one 6-connected piece.

    Raises:
        ValueError: If ``family`` is unknown.
    """
    size = float(params["size_px"])
    container = container_mask(shape, float(params["container_radius"]))
    if family == "voronoi":
        parts = voronoi_partition(shape, size, float(params["density_contrast"]), rng)
        keep = float(params["keep_fraction"])
    elif family == "gravity":
        parts = gravity_sphere_partition(container, size, float(params["fill"]), rng)
        keep = 1.0
    elif family == "blobs":
        parts = blob_partition(container, size, float(params["fill"]), rng)
        keep = 1.0
    else:
        raise ValueError(f"family must be 'voronoi', 'gravity' or 'blobs', got {family!r}")
    parts = displace_labels(parts, float(params["deformation_px"]), size / 2.0, rng)
    radius = float(params["container_radius"])
    inner = container_mask(shape, radius - 2.0 / min(shape[1:]))  # 1 voxel in, not along Z
    parts = select_inside(parts, inner, keep, rng)
    n = int(parts.max())
    depth = rng.uniform(0.5, 1.0, n + 1) * float(params["erosion_px"])
    depth[rng.random(n + 1) < float(params["touching"])] = 0.0
    parts = erode_rough(parts, depth, float(params["roughness_px"]), size / 4.0, rng)
    return finalize_labels(parts, int(params["min_voxels"]))
