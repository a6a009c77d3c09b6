"""On-disk state of the network stage: spill pieces, pending sums, markers, the border-core map.

For chunk ``c`` of a :class:`~particleseg.inference.plan.ChunkPlan`, :meth:`ChunkStore.save`
takes the weighted softmax sums over the region its windows cover and

1. writes its spill pieces (the parts beyond its interior, one ``.npy`` per direction),
   then the marker ``computed/c`` (its pieces exist);
2. if every chunk that spills into ``c`` is computed, adds their pieces to its interior, takes
   the argmax and writes its own region of ``border_core.zarr`` (and of ``probabilities.zarr``
   when asked), then the marker ``done/c``, then deletes the pieces it consumed; otherwise it
   keeps its interior sums as ``pending/c.npy`` for :meth:`ChunkStore.finalize_pending`.

Every file is written under a temporary name and renamed, and markers are written after what
they vouch for, so a process killed at any moment leaves a state from which the same run
continues: chunks ``done`` are skipped, chunks with ``pending`` sums are finalized without a
forward pass, the others are computed again (rewriting identical pieces). Sums are added in a
fixed order (own windows, then contributors by direction), so the result does not depend on
which process computed what, or when.

The zarr outputs are chunked exactly like the plan (``chunk_size``; the one chunk of an axis
that is padded spans it whole), so two chunks never write the same zarr chunk: no lock.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import zarr

from particleseg.inference.plan import DIRECTIONS, ChunkPlan


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def touch_json(path: Path, content: dict | None = None) -> None:
    """Write ``content`` as JSON to ``path`` atomically (temporary name, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(content or {}))
    os.replace(tmp, path)


def _zarr_chunks(plan: ChunkPlan) -> tuple[int, ...]:
    return tuple(min(c, n) for c, n in zip(plan.chunk_size, plan.network_shape, strict=True))


class ChunkStore:
    """The network stage's files under ``root``.

    Args:
        root: work folder (created).
        plan: the chunk plan.
        n_classes: channels of the sums (3: background, core, border).
        save_probabilities: also write float16 ``probabilities.zarr`` (K, Z, Y, X).
    """

    def __init__(
        self, root: str | os.PathLike, plan: ChunkPlan, n_classes: int = 3, save_probabilities=False
    ) -> None:
        self.root = Path(root)
        self.plan = plan
        self.n_classes = int(n_classes)
        for sub in ("computed", "done", "spill", "pending"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        chunks = _zarr_chunks(plan)
        self.border_core = self._array(
            "border_core.zarr", plan.network_shape, chunks, "uint8", fill_value=0
        )
        self.probabilities = None
        if save_probabilities:
            self.probabilities = self._array(
                "probabilities.zarr",
                (self.n_classes, *plan.network_shape),
                (self.n_classes, *chunks),
                "float16",
                fill_value=0,
            )

    def _array(self, name, shape, chunks, dtype, fill_value) -> zarr.Array:
        path = self.root / name
        if path.exists():
            arr = zarr.open_array(str(path), mode="r+")
            if arr.shape != tuple(shape) or arr.chunks != tuple(chunks):
                raise ValueError(
                    f"{path}: holds shape {arr.shape} chunks {arr.chunks}, the plan needs "
                    f"{tuple(shape)} chunks {tuple(chunks)}; remove the folder or pass "
                    "overwrite=true"
                )
            return arr
        return zarr.create_array(
            store=str(path), shape=shape, chunks=chunks, dtype=dtype, fill_value=fill_value
        )

    # -- markers ----------------------------------------------------------------------------

    def _marker(self, kind: str, c: int) -> Path:
        return self.root / kind / str(c)

    def is_done(self, c: int) -> bool:
        """Chunk ``c``'s region of the outputs is written."""
        return self._marker("done", c).exists()

    def is_computed(self, c: int) -> bool:
        """Chunk ``c``'s spill pieces are on disk."""
        return self._marker("computed", c).exists()

    def _pending(self, c: int) -> Path:
        return self.root / "pending" / f"{c}.npy"

    def _piece(self, c: int, d) -> Path:
        return self.root / "spill" / f"{c}-{''.join(map(str, d))}.npy"

    def to_compute(self) -> list[int]:
        """Chunks that need their forward passes: neither done nor holding pending sums."""
        return [
            c
            for c in range(self.plan.n_chunks)
            if not self.is_done(c) and not self._pending(c).exists()
        ]

    def stats(self) -> dict:
        """Forward passes and their seconds, summed over the computed markers."""
        passes = seconds = 0.0
        for path in (self.root / "computed").iterdir():
            if path.name.startswith("."):
                continue
            info = json.loads(path.read_text() or "{}")
            passes += info.get("forward_passes", 0)
            seconds += info.get("forward_s", 0.0)
        return {"forward_passes": int(passes), "forward_s": seconds}

    # -- writing ----------------------------------------------------------------------------

    def save(self, c: int, sums: np.ndarray, info: dict | None = None) -> bool:
        """Store chunk ``c``'s sums over its extent; finalize it if it can be.

        Args:
            c: chunk number.
            sums: float32 (K, *extent shape) weighted softmax sums of its windows.
            info: small JSON-able facts kept in its marker (forward passes, seconds).

        Returns:
            True when the chunk was finalized now, False when it waits as pending.
        """
        start, stop = self.plan.extent(c)
        want = (self.n_classes, *(b - a for a, b in zip(start, stop, strict=True)))
        if tuple(sums.shape) != want:
            raise ValueError(f"chunk {c}: sums of shape {tuple(sums.shape)}, expected {want}")
        sums = np.asarray(sums, dtype=np.float32)
        i0, i1 = self.plan.interior(c)
        for d in DIRECTIONS:
            region = self.plan.piece(c, d)
            if region is None:
                continue
            lo, hi = region
            sl = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start, strict=True))
            _save_npy(self._piece(c, d), np.ascontiguousarray(sums[(slice(None), *sl)]))
        touch_json(self._marker("computed", c), info)
        interior = sums[(slice(None), *(slice(0, b - a) for a, b in zip(i0, i1, strict=True)))]
        if all(self.is_computed(n) for n, _ in self.plan.contributors(c)):
            self._finalize(c, interior)
            return True
        _save_npy(self._pending(c), np.ascontiguousarray(interior))
        return False

    def finalize_pending(self) -> int:
        """Finalize every chunk that waits with pending sums; return how many.

        Raises:
            RuntimeError: a chunk is neither done nor pending, or a contributor is missing
                (the network stage did not finish).
        """
        count = 0
        for c in range(self.plan.n_chunks):
            if self.is_done(c):
                continue
            path = self._pending(c)
            missing = [n for n, _ in self.plan.contributors(c) if not self.is_computed(n)]
            if not path.exists() or missing:
                raise RuntimeError(
                    f"{self.root}: chunk {c} cannot be finalized (pending sums "
                    f"{'present' if path.exists() else 'missing'}, contributors not computed: "
                    f"{missing}); run the network stage again"
                )
            self._finalize(c, np.load(path))
            count += 1
        return count

    def _finalize(self, c: int, interior: np.ndarray) -> None:
        plan = self.plan
        i0, i1 = plan.interior(c)
        total = np.array(interior, dtype=np.float32, copy=True)
        for n, d in plan.contributors(c):
            lo, hi = plan.piece(n, d)
            sl = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, i0, strict=True))
            total[(slice(None), *sl)] += np.load(self._piece(n, d))
        lo, hi = plan.unpadded(i0, i1)
        inner = tuple(
            slice(a + p - s, b + p - s) for a, b, p, s in zip(lo, hi, plan.pad, i0, strict=True)
        )
        total = total[(slice(None), *inner)]
        region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        if all(b > a for a, b in zip(lo, hi, strict=True)):
            self.border_core[region] = np.argmax(total, axis=0).astype(np.uint8)
            if self.probabilities is not None:
                weight = total.sum(axis=0, keepdims=True)
                probs = total / np.maximum(weight, np.finfo(np.float32).tiny)
                self.probabilities[(slice(None), *region)] = probs.astype(np.float16)
        touch_json(self._marker("done", c))
        for n, d in plan.contributors(c):
            self._piece(n, d).unlink(missing_ok=True)
        self._pending(c).unlink(missing_ok=True)

    def cleanup(self) -> None:
        """Remove the spill pieces, pending sums and markers (keeps the zarr outputs)."""
        for sub in ("computed", "done", "spill", "pending"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
