"""The bundled sample scan, generated deterministically on first use.

``predict.py`` with no arguments segments this scan. Instead of shipping a binary volume in the
repository, the same seed and settings regenerate it byte for byte on any machine:

    python -m particleseg.synth.sample        # prints the path, generating it if needed
"""

from __future__ import annotations

import argparse
from pathlib import Path

from particleseg.config import user_cache_dir
from particleseg.io import SampleMetadata, write_metadata, write_volume
from particleseg.io.atomic import atomic_path
from particleseg.synth.dataset import make_sample, mean_equivalent_diameter

VERSION = "sample-v1"
SHAPE = (128, 256, 256)
SPACING_MM = 0.01
SEED = 2026
SCENE = {
    "size_median_px": 16,
    "size_sigma": 0.4,
    "size_range_px": [4, 70],
    "packing": 0.22,
    "touching_fraction": 0.06,
}
CT = {"photons": 800, "beam_hardening": 0.05, "ring_strength": 0.002, "detector_blur": 0.7}


def bundled_sample(cache_dir: str | Path | None = None, shape=SHAPE) -> Path:
    """Path of the bundled sample scan (uint16 TIFF with a ``.meta.json`` sidecar).

    Generated on first use (about 10 s) into ``cache_dir/sample-v1`` (or a folder named after
    ``shape`` when it is not the default), atomically: the folder appears only when complete.
    The reference labels lie beside it as ``labels.tif``.

    Args:
        cache_dir: where to keep it; default :func:`particleseg.config.user_cache_dir`.
        shape: (Z, Y, X) volume shape (smaller ones are for tests).

    Returns:
        Path of ``scan.tif``.
    """
    shape = tuple(int(s) for s in shape)
    name = VERSION if shape == SHAPE else f"{VERSION}-{'x'.join(map(str, shape))}"
    folder = Path(cache_dir or user_cache_dir()) / name
    scan = folder / "scan.tif"
    if scan.exists():
        return scan
    folder.parent.mkdir(parents=True, exist_ok=True)
    image, labels, _ = make_sample(shape, SCENE, CT, "full", SEED)
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        spacing = (SPACING_MM,) * 3
        write_volume(tmp / "scan.tif", image, spacing=spacing)
        write_volume(tmp / "labels.tif", labels, spacing=spacing)
        write_metadata(
            tmp / "scan.tif",
            SampleMetadata(
                spacing=spacing,
                unit="mm",
                particle_size=round(mean_equivalent_diameter(labels) * SPACING_MM, 6),
            ),
        )
    return scan


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: print the bundled sample's path, generating it if needed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    print(bundled_sample(args.cache_dir))


if __name__ == "__main__":
    main()
