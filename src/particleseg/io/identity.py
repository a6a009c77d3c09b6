"""Which input a result was made from: path, size, modification time and a bounded content hash.

A result on disk must never be mistaken for another input's (predict's fingerprint,
:func:`particleseg.inference.run_state.fingerprint`). Hashing a 3 GB scan whole would cost
seconds to minutes on every run, so :func:`input_identity` hashes a bounded sample of its
bytes instead: the head and the tail of a file and evenly spaced blocks between them, or, for a
folder (a zarr store, a stack of slices), the list of its files with their sizes and the
sampled bytes of some of them. Together with the size and the modification time this tells a
changed or replaced input from the same one without reading it all.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

HEAD_BYTES = 1 << 16  # bytes hashed at the start and at the end of a file
BLOCK_BYTES = 1 << 12  # bytes hashed at each of the evenly spaced positions between them
N_BLOCKS = 64  # evenly spaced blocks per file (at most 64 KiB + 2 x 64 KiB read per file)
N_FILES = 16  # files of a folder whose bytes are sampled (all are listed with their sizes)


def _sample_file(h: hashlib._Hash, path: Path, size: int) -> int:
    """Feed ``h`` the sampled bytes of one file; returns the number of bytes read."""
    read = 0
    with open(path, "rb") as f:
        if size <= 2 * HEAD_BYTES + N_BLOCKS * BLOCK_BYTES:
            data = f.read()
            h.update(data)
            return len(data)
        offsets = [0, size - HEAD_BYTES]
        step = (size - 2 * HEAD_BYTES - BLOCK_BYTES) / max(N_BLOCKS - 1, 1)
        offsets += [HEAD_BYTES + int(i * step) for i in range(N_BLOCKS)]
        for offset in sorted(offsets):
            f.seek(offset)
            data = f.read(HEAD_BYTES if offset in (0, size - HEAD_BYTES) else BLOCK_BYTES)
            h.update(offset.to_bytes(8, "little"))
            h.update(data)
            read += len(data)
    return read


def input_identity(path: str | os.PathLike[str]) -> dict:
    """Path, size, newest modification time and a sampled SHA-256 of a file or a folder.

    Args:
        path: A volume file (``.tif``, ``.npy``...) or a folder (a zarr store, 2D slices).

    Returns:
        ``{"path", "bytes", "files", "mtime_ns", "sample_sha256", "sample_bytes"}``: the
        resolved path, the bytes and number of files, the newest modification time in
        nanoseconds, the hash of the sampled bytes (and of the folder's file list) and how many
        bytes were read for it (at most about 200 KiB per sampled file).

    Raises:
        ValueError: naming the path, if it does not exist or cannot be read.
    """
    root = Path(path)
    try:
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file())
        elif root.is_file():
            files = [root]
        else:
            raise ValueError(f"{root}: no such file or folder")
        stats = [p.stat() for p in files]
        h = hashlib.sha256()
        for p, st in zip(files, stats, strict=True):
            rel = p.relative_to(root).as_posix() if root.is_dir() else p.name
            h.update(f"{rel}\0{st.st_size}\n".encode())
        # metadata (zarr.json, .zarray, .zattrs, JSON sidecars) is small: hash all of it, and
        # the bytes of up to N_FILES other files evenly spread over the sorted list
        meta = [i for i, p in enumerate(files) if p.suffix == ".json" or p.name.startswith(".z")]
        data = [i for i in range(len(files)) if i not in set(meta)]
        if len(data) > N_FILES:
            data = [data[round(k * (len(data) - 1) / (N_FILES - 1))] for k in range(N_FILES)]
        chosen = sorted(set(meta[: 4 * N_FILES]) | set(data))
        sampled = sum(_sample_file(h, files[i], stats[i].st_size) for i in chosen)
    except OSError as err:
        raise ValueError(f"{root}: cannot read the input ({err.strerror or err})") from err
    return {
        "path": str(root.resolve()),
        "bytes": int(sum(st.st_size for st in stats)),
        "files": len(files),
        "mtime_ns": int(max((st.st_mtime_ns for st in stats), default=0)),
        "sample_sha256": h.hexdigest(),
        "sample_bytes": int(sampled),
    }


__all__ = ["input_identity"]
