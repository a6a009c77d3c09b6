"""The reference implementation's border-core -> instance approach, as a baseline for benchmarks.

Re-implemented from its description in REFERENCE.md (not its code): connected components of the
foreground, then per component a Python loop that labels the cores, applies the small-core rule
per core, and grows the cores by repeated 3x3x3 grey dilation until every border voxel is taken
(ties go to the larger label, not the nearer core). A component without a core is one particle.
"""

from __future__ import annotations

import cc3d
import numpy as np
import scipy.ndimage as ndi


def reference_border_core_to_instance(border_core: np.ndarray) -> np.ndarray:
    """Per-component grey-dilation growing of cores through the border (the reference's way)."""
    fg = border_core > 0
    comps, n = cc3d.connected_components(fg, connectivity=26, return_N=True)
    boxes = cc3d.statistics(comps)["bounding_boxes"]
    out = np.zeros(border_core.shape, np.uint32)
    next_id = 1
    for c in range(1, n + 1):
        box = boxes[c]
        mask = comps[box] == c
        sub = np.where(mask, border_core[box], 0)
        cores, n_cores = ndi.label(sub == 1)
        keep = np.zeros(n_cores + 1, np.uint32)
        for k, core_box in enumerate(ndi.find_objects(cores), start=1):
            core = np.pad(cores[core_box] == k, 1)
            depth = ndi.distance_transform_edt(core)[core]
            if not (np.mean(depth <= 1) >= 0.95 and not np.any(depth >= 3)):
                keep[k] = 1
        if not keep.any():
            out[box][mask] = next_id
            next_id += 1
            continue
        ids = np.cumsum(keep, dtype=np.uint32) * keep
        lab = np.where(cores > 0, ids[cores] + (next_id - 1) * (ids[cores] > 0), 0).astype(
            np.uint32
        )
        next_id += int(keep.sum())
        todo = mask & (lab == 0)
        while todo.any():
            grown = ndi.grey_dilation(lab, size=3)
            take = todo & (grown > 0)
            if not take.any():  # border not reachable from a core through 26-neighbours
                break
            lab[take] = grown[take]
            todo &= ~take
        out[box][mask] = lab[mask]
    return out
