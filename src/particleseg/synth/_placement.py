"""Placing rendered objects in a scene without overlap: free and touching placement (internal).

An ``owner`` volume records what each voxel's label mask belongs to: 0 free resin, -1 outside
the resin cylinder, -2 a void, ``k > 0`` particle ``k``. Objects may be cut by the volume's faces
along the axes where ``cut`` allows it (their centroid stays inside); along the others the
object and its gap must fit in the volume. A free placement keeps every mask voxel
farther than ``gap`` (Euclidean, between voxel centres) from every other mask and from the
cylinder wall. A touching placement slides the new object towards a partner along a 6-connected
path until its mask is 6-adjacent to the partner's, without overlap, and keeps the gap from all
other masks.

Free placement draws candidate centres from a half-resolution distance map of the free space
(kept up to date by local updates after each placement) and screens them with probe points of
the object (voxels with their depth inside it), before the exact voxel check.
"""

from __future__ import annotations

from dataclasses import dataclass

import edt
import numpy as np
import scipy.ndimage as ndi
from scipy.spatial import cKDTree

from particleseg.synth._features import largest_piece
from particleseg.synth._pieces import CROSS, Piece, surface_voxels

OUTSIDE = -1
VOID = -2
_BATCH = 64


def _path6(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer points (n + 1, 3) of a 6-connected path from ``a`` to ``b`` near the line."""
    d = b - a
    n = np.abs(d)
    t = np.concatenate([(np.arange(n[k]) + 0.5) / max(n[k], 1) for k in range(3)])
    axis = np.repeat(np.arange(3), n)
    axis = axis[np.argsort(t, kind="stable")]
    steps = np.zeros((len(axis) + 1, 3), np.int64)
    steps[np.arange(1, len(axis) + 1), axis] = np.sign(d)[axis]
    return a + np.cumsum(steps, axis=0)


@dataclass(frozen=True)
class Placed:
    """What a touching placement needs to know about a placed particle (global coordinates)."""

    surface: np.ndarray  # (3, n) int64 surface voxels of its in-volume label mask
    centre: np.ndarray  # (3,) float64
    radius: float
    ident: int


class Packer:
    """Mutable placement state of one scene (see module docstring)."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        inside_yx: np.ndarray,
        gap: float,
        cut: tuple[bool, bool, bool],
        rng: np.random.Generator,
    ) -> None:
        self.shape = np.asarray(shape, int)
        self.owner = np.zeros(shape, np.int32)
        self.owner[:, ~inside_yx] = OUTSIDE
        self.gap = gap
        self.cut = np.asarray(cut, bool)  # per axis: may the volume's faces cut an object?
        self.rng = rng
        half = self.shape // 2
        free = self.owner[: 2 * half[0], : 2 * half[1], : 2 * half[2]] == 0
        free = free.reshape(half[0], 2, half[1], 2, half[2], 2).all(axis=(1, 3, 5))
        # free distance in full-resolution voxels, on the half-resolution grid
        self.dist = (2.0 * edt.edt(free, black_border=False, parallel=1)).astype(np.float32)
        self._candidates: dict[int, tuple[int, np.ndarray]] = {}
        self._version = 0

    # -- geometry helpers -------------------------------------------------------------------
    def _slices(self, lo: np.ndarray, size: tuple[int, ...]) -> tuple[tuple, tuple] | None:
        """Global and local slices of a box at ``lo`` clipped to the volume (None if outside)."""
        hi = lo + np.asarray(size)
        glo, ghi = np.maximum(lo, 0), np.minimum(hi, self.shape)
        if np.any(ghi <= glo):
            return None
        g = tuple(slice(int(a), int(b)) for a, b in zip(glo, ghi, strict=True))
        loc = tuple(slice(int(a), int(b)) for a, b in zip(glo - lo, ghi - lo, strict=True))
        return g, loc

    def final_mask(self, piece: Piece, origin: np.ndarray) -> tuple[tuple, tuple, np.ndarray]:
        """Global slices, local slices and the in-volume label mask (largest piece if cut)."""
        sl = self._slices(origin, piece.mask.shape)
        if sl is None:
            raise ValueError("final_mask: the piece lies outside the volume")
        g, loc = sl
        mask = piece.mask[loc]
        if mask.shape != piece.mask.shape:
            mask = largest_piece(mask)
        return g, loc, mask

    def _clear(self, piece: Piece, origin: np.ndarray, partner: int) -> bool:
        """Bounds, centre and gap check of ``piece`` at ``origin``, ignoring ``partner``."""
        lo = origin - piece.pad
        hi = origin + np.asarray(piece.mask.shape) + piece.pad
        keep = ~self.cut
        if np.any(lo[keep] < 0) or np.any(hi[keep] > self.shape[keep]):
            return False
        centre = origin + piece.centre  # a cut object keeps its centroid in the volume
        if np.any((centre < 0) | (centre >= self.shape)):
            return False
        sl = self._slices(lo, piece.dilated.shape)
        if sl is None:
            return False
        values = self.owner[sl[0]][piece.dilated[sl[1]]]
        if partner == 0:
            return not values.any()
        return not np.any((values != 0) & (values != partner))

    def fits(self, piece: Piece, origin: np.ndarray, partner: int = 0) -> bool:
        """Whether ``piece`` at ``origin`` keeps the gap from everything but ``partner``.

        With a partner, the piece may come closer to it than the gap but must not overlap it.
        """
        if not self._clear(piece, origin, partner):
            return False
        g, _, mask = self.final_mask(piece, origin)
        if not mask.any():  # cut away by a Z face
            return False
        return partner == 0 or not self.owner[g][mask].any()

    def commit(
        self, piece: Piece, origin: np.ndarray, value: int
    ) -> tuple[tuple, tuple, np.ndarray]:
        """Write the piece's in-volume label mask as ``value``; returns :meth:`final_mask`."""
        g, loc, mask = self.final_mask(piece, origin)
        self.owner[g][mask] = value
        self._version += 1
        self._update_dist(g, mask, float(piece.probe_need.max()))
        return g, loc, mask

    def placed(self, g: tuple, mask: np.ndarray, ident: int) -> Placed:
        """The :class:`Placed` record of a committed mask at global slices ``g``."""
        lo = np.array([s.start for s in g])
        surface = surface_voxels(mask) + lo[:, None]
        coords = np.stack(np.nonzero(mask)) + lo[:, None]
        centre = coords.mean(axis=1)
        radius = float(np.sqrt(((coords - centre[:, None]) ** 2).sum(axis=0)).max()) + 0.5
        return Placed(surface, centre, radius, ident)

    # -- free placement ---------------------------------------------------------------------
    def _update_dist(self, g: tuple, mask: np.ndarray, reach: float) -> None:
        """Lower the free distance around a new mask, out to ``reach`` voxels."""
        lo = np.array([s.start for s in g]) // 2
        hi = (np.array([s.stop for s in g]) - 1) // 2 + 1
        m = int(np.ceil(reach / 2)) + 2
        clo, chi = np.maximum(lo - m, 0), np.minimum(hi + m, self.dist.shape)
        if np.any(chi <= clo):
            return
        fine = np.zeros(tuple(2 * (chi - clo)), bool)
        off = np.array([s.start for s in g]) - 2 * clo
        fine[tuple(slice(int(a), int(a) + n) for a, n in zip(off, mask.shape, strict=True))] = mask
        c = fine.reshape(chi[0] - clo[0], 2, chi[1] - clo[1], 2, chi[2] - clo[2], 2)
        # scipy is faster than edt on boxes this small
        local = 2.0 * ndi.distance_transform_edt(~c.any(axis=(1, 3, 5)))
        box = tuple(slice(int(a), int(b)) for a, b in zip(clo, chi, strict=True))
        np.minimum(self.dist[box], local, out=self.dist[box])

    def _cells(self, need: float, force: bool) -> tuple[np.ndarray, bool]:
        """Half-resolution cells with free distance >= need, and whether they are up to date.

        Plain rejection sampling while such cells are common; when they are rare, a list of all
        of them, cached per ``need`` and rebuilt on demand (``force``) after new placements.
        """
        key = int(need)
        draw = self.rng.integers(self.dist.size, size=16 * _BATCH)
        hits = draw[self.dist.ravel()[draw] >= key]
        if len(hits) >= _BATCH // 4:
            return hits, True
        cached = self._candidates.get(key)
        if force or cached is None:
            cached = (self._version, np.flatnonzero(self.dist >= key).astype(np.int32))
            self._candidates[key] = cached
        return cached[1], cached[0] == self._version

    def place_free(self, piece: Piece, tries: int) -> np.ndarray | None:
        """Origin (3,) of a random valid free placement of ``piece``, or None.

        Candidate centres come in batches from the free-distance map; those whose probes all
        have enough free space around them get the exact check, at most ``tries`` of them.
        """
        c0 = np.round(piece.centre).astype(int)
        top = np.array(self.dist.shape)[:, None, None] - 1
        centred = len(piece.probe_need) and not piece.probes[:, 0].any()
        need = float(piece.probe_need[0]) if centred else 0.0
        attempts, force = 0, False
        for _ in range(4 * tries):
            if attempts >= tries:
                break
            cells, fresh = self._cells(need, force)
            force = False
            if len(cells) == 0:
                if fresh:
                    return None
                force = True
                continue
            pick = cells[self.rng.integers(len(cells), size=_BATCH)]
            centres = 2 * np.stack(np.unravel_index(pick, self.dist.shape))
            centres += self.rng.integers(0, 2, centres.shape)
            pts = np.clip((centres[:, :, None] + piece.probes[:, None, :]) // 2, 0, top)
            ok = (self.dist[tuple(pts)] >= piece.probe_need).all(axis=1)
            if not ok.any():
                force = not fresh
                attempts += 0 if force else 2
                continue
            for centre in centres[:, ok].T[: tries - attempts]:
                attempts += 1
                if self.fits(piece, centre - c0):
                    return centre - c0
            force = not fresh
        return None

    # -- touching placement -----------------------------------------------------------------
    def place_touching(self, piece: Piece, partner: Placed, tries: int) -> np.ndarray | None:
        """Origin (3,) putting ``piece`` face to face with a placed partner, or None.

        Directions around the partner are screened: the piece is put where its support and the
        partner's (their extents along the direction) meet, and kept only if it would clear
        every other object there. From just outside that point the piece walks towards the
        partner's centre along a 6-connected path, in steps no longer than (distance to the
        partner - 1), so it stops exactly when its mask is first 6-adjacent to the partner's,
        never overlapping it. At most ``tries`` walks are made.
        """
        tree = cKDTree(partner.surface.T)
        target = np.round(partner.centre).astype(np.int64)
        c0 = np.round(piece.centre).astype(np.int64)
        u = self.rng.normal(size=(48, 3))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        h_p = (u @ (partner.surface - partner.centre[:, None])).max(axis=1)
        h_q = (-u @ (piece.surface - piece.centre[:, None])).max(axis=1)
        for j in range(len(u)):
            if tries <= 0:
                break
            near = partner.centre + u[j] * (h_p[j] + h_q[j] + 1.0)
            if not self._clear(piece, np.round(near).astype(np.int64) - c0, partner.ident):
                continue
            tries -= 1
            path = _path6(np.round(near + 2.5 * u[j]).astype(np.int64), target)
            k, contact = 0, None
            while k < len(path):
                origin = path[k] - c0
                m = float(tree.query((piece.surface + origin[:, None]).T, k=1)[0].min())
                if m <= 1.0 + 1e-6:
                    contact = origin if m >= 1.0 - 1e-6 else None
                    break
                k += max(1, int(m - 1.0))
            if contact is None:
                continue
            if self.fits(piece, contact, partner.ident) and self._touches(
                piece, contact, partner.ident
            ):
                return contact
        return None

    def _touches(self, piece: Piece, origin: np.ndarray, partner_id: int) -> bool:
        """Whether the in-volume mask at ``origin`` is 6-adjacent to ``partner_id``."""
        g, _, mask = self.final_mask(piece, origin)
        lo = np.array([s.start for s in g]) - 1
        grown = ndi.binary_dilation(np.pad(mask, 1), CROSS)
        sl = self._slices(lo, grown.shape)
        if sl is None:
            return False
        return bool(np.any(self.owner[sl[0]][grown[sl[1]]] == partner_id))
