"""Finding a sample's prediction in a folder of predictions."""

from __future__ import annotations

from pathlib import Path

# zarr first: predict writes instances.zarr and, when small enough, a TIFF copy of it
_SUFFIXES = (".zarr", ".tif", ".tiff", ".npy")


def find_prediction(folder: Path, name: str) -> Path:
    """The prediction of sample ``name`` in ``folder``: ``NAME.{zarr,tif,tiff,npy}``.

    Also accepts a per-sample folder ``NAME/instances.{zarr,tif,tiff,npy}``.
    """
    candidates = [folder / f"{name}{s}" for s in _SUFFIXES]
    candidates += [folder / name / f"instances{s}" for s in _SUFFIXES]
    found = [p for p in candidates if p.exists()]
    if not found:
        raise ValueError(
            f"{folder}: no prediction for sample {name!r} (looked for "
            f"{', '.join(p.name for p in candidates[: len(_SUFFIXES)])} and "
            f"{name}/instances.*)"
        )
    return found[0]
