"""Fuzz predict's door (issue 18): seeded random corruptions of TIFF, npy and zarr scans.

Each corrupted input goes through what predict does before the network: open and resolve the
scan (:func:`resolve_scan`), fit the normalization to a sample of it, and stream the value check.
Every case must end in a valid scan or a ``ValueError`` naming the file, within a few seconds:
never another exception (a traceback for the user), never a hang.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
import zarr
from inference_helpers import blobs

from particleseg.inference.checks import check_scan_values
from particleseg.inference.inputs import resolve_scan
from particleseg.inference.pipeline import scan_normalization
from particleseg.io import write_volume

N_CASES = 100  # per format
MODEL = SimpleNamespace(normalization={"scheme": "percentile"})  # what scan_normalization reads
SECONDS = 10  # per case: longer counts as a hang


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def _flip(rng, data: bytearray, lo: int, hi: int, n: int) -> None:
    hi = min(hi, len(data))
    for _ in range(n):
        if hi > lo:
            data[int(rng.integers(lo, hi))] ^= int(rng.integers(1, 256))


def _write(fmt: str, path: Path, array) -> Path:
    if fmt == "tif":
        tifffile.imwrite(path, array)
    elif fmt == "npy":
        np.save(path, array)
    elif array.ndim == 3 and array.size and array.dtype.kind in "uif":
        write_volume(path, array)
    else:  # what write_volume refuses to write, a foreign writer may have written
        zarr.save_array(str(path), array if array.dtype.kind != "U" else array.astype(np.complex64))
    return path


def corrupt(fmt: str, case: int, folder: Path) -> tuple[Path, str]:
    """One seeded corruption of a small scan; returns the path and what was done."""
    rng = np.random.default_rng(1000 * ["tif", "npy", "zarr"].index(fmt) + case)
    path = folder / f"scan{case}.{fmt}"
    base = blobs((12, 16, 16), 4, 3, seed=case)
    kind = ["truncate", "header", "bytes", "dtype", "nonfinite", "shape", "huge"][case % 7]
    if kind == "dtype":
        bad = [base.astype(np.complex64), base.astype(bool), base.astype("U3"), base[None]]
        choice = bad[int(rng.integers(len(bad)))]
        if fmt == "tif" and choice.dtype.kind == "U":
            choice = base.astype(np.complex64)
        return _write(fmt, path, choice), kind
    if kind == "nonfinite":
        array = base.astype(np.float32)
        array[tuple(rng.integers(0, s) for s in array.shape)] = [np.nan, np.inf, -np.inf][case % 3]
        return _write(fmt, path, array), kind
    if kind == "shape":
        shapes = [(0, 16, 16), (12, 0, 16), (16, 16), (2, 2, 2), (1, 1, 1)]
        shape = shapes[int(rng.integers(len(shapes)))]
        array = (np.arange(int(np.prod(shape))) % 7).reshape(shape).astype(np.uint16)
        return _write(fmt, path, array), kind
    _write(fmt, path, base)
    files = _files(path)
    target = files[int(rng.integers(len(files)))]
    if fmt == "zarr" and kind in ("header", "huge"):
        target = path / "zarr.json"
    data = bytearray(target.read_bytes())
    if kind == "truncate":
        data = data[: int(rng.integers(0, max(len(data), 1)))]
    elif kind == "header":
        _flip(rng, data, 0, 128, int(rng.integers(1, 6)))
    elif kind == "bytes":
        _flip(rng, data, 0, len(data), int(rng.integers(1, 50)))
    elif kind == "huge":
        huge = [int(v) for v in rng.integers(10**5, 10**7, 3)]
        if fmt == "zarr":
            meta = json.loads(data)
            meta["shape"] = huge
            data = bytearray(json.dumps(meta).encode())
        elif fmt == "npy":
            text = data[:128].decode("latin1")
            head = text.replace("(12, 16, 16)", str(tuple(huge)))
            data = bytearray(head.encode("latin1")[: len(text)].ljust(len(text), b" ")) + data[128:]
        else:  # the first page's ImageLength / ImageWidth tags, as little-endian 16-bit values
            _flip(rng, data, 8, 200, 8)
    target.write_bytes(bytes(data))
    return path, kind


def _alarm(signum, frame):
    raise TimeoutError("hang")


@pytest.mark.parametrize("fmt", ["tif", "npy", "zarr"])
def test_every_corruption_is_a_clean_error_or_a_valid_scan(fmt, tmp_path):
    old = signal.signal(signal.SIGALRM, _alarm)
    outcomes = {"valid": 0, "error": 0}
    try:
        for case in range(N_CASES):
            folder = tmp_path / str(case)
            folder.mkdir()
            path, kind = corrupt(fmt, case, folder)
            signal.alarm(SECONDS)
            try:
                scan = resolve_scan(path, particle_size_px=3.0)
                array = scan.open()
                scan_normalization(scan, MODEL)
                check_scan_values(array, scan)
                outcomes["valid"] += 1
            except ValueError as err:
                assert path.name in str(err), f"case {case} ({kind}): {err}"
                outcomes["error"] += 1
            except TimeoutError:
                pytest.fail(f"case {case} ({kind}) of {fmt}: no answer within {SECONDS} s")
            except Exception as err:  # noqa: BLE001 - this is what the test looks for
                pytest.fail(f"case {case} ({kind}) of {fmt}: {type(err).__name__}: {err}")
            finally:
                signal.alarm(0)
            shutil.rmtree(folder)
    finally:
        signal.signal(signal.SIGALRM, old)
    assert outcomes["error"] >= N_CASES // 3  # the corruptions do break things
    intact = _write(fmt, tmp_path / f"intact.{fmt}", blobs((12, 16, 16), 4, 3))
    scan = resolve_scan(intact, particle_size_px=3.0)  # the same door passes an intact scan
    scan_normalization(scan, MODEL)
    check_scan_values(scan.open(), scan)
