"""A small demo dataset of noisy, blurred ellipsoid packs: enough to run evaluate.py end to end.

This is NOT the CT phantom (that is the synthetic micro-CT generator); it is a quick stand-in
with exact labels: particles of varying brightness in a darker resin, partial-volume blur and
Gaussian noise, written in the project's dataset format. The ``ood_test`` split uses smaller,
lower-contrast particles than ``train``.

Usage: ``python -m particleseg.synth.demo OUT_DIR [--size 64] [--seed 0]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

from particleseg.synth.ellipsoids import packed_ellipsoids

# split -> (number of samples, semi-axes range in voxels, particle contrast range, noise sigma)
SPLITS = {
    "train": (3, (4.0, 9.0), (0.35, 1.0), 0.12),
    "id_test": (2, (4.0, 9.0), (0.35, 1.0), 0.12),
    "ood_test": (2, (3.0, 6.0), (0.2, 0.5), 0.14),
}


def render_demo_image(
    labels: np.ndarray, contrast: tuple[float, float], noise: float, rng: np.random.Generator
) -> np.ndarray:
    """Render labels as a uint16 image: per-particle brightness, blur, Gaussian noise.

    Args:
        labels: (Z, Y, X) uint32 instance labels.
        contrast: range of particle brightness above the resin, in units of the resin level.
        noise: Gaussian noise sigma in the same units.
        rng: random generator.

    Returns:
        (Z, Y, X) uint16 image.
    """
    n = int(labels.max())
    brightness = np.concatenate([[0.0], rng.uniform(*contrast, size=n)])
    image = 1.0 + brightness[labels]
    image = ndi.gaussian_filter(image, 0.8)
    image += rng.normal(0.0, noise, size=labels.shape)
    return np.clip(image * 12000.0 + 3000.0, 0, 65535).astype(np.uint16)


def build_demo_dataset(out_dir: str | Path, size: int = 64, seed: int = 0) -> Path:
    """Write a demo dataset folder (``dataset.json``, ``images/``, ``labels/``).

    Args:
        out_dir: folder to create (must not hold a dataset already).
        size: edge length of each cubic sample, in voxels.
        seed: base random seed; the same seed gives the same dataset.

    Returns:
        Path of the written ``dataset.json``.
    """
    from particleseg.io import write_dataset_json, write_volume

    out = Path(out_dir)
    if (out / "dataset.json").exists():
        raise ValueError(f"{out / 'dataset.json'}: a dataset is already there; pick another folder")
    samples = []
    rng = np.random.default_rng(seed)
    k = 0
    for split, (count, axes, contrast, noise) in SPLITS.items():
        for _ in range(count):
            name = f"{split}_{k:03d}"
            mean_axis = float(np.mean(axes))
            n = int(0.45 * size**3 / (4.19 * mean_axis**3))
            labels = packed_ellipsoids((size,) * 3, n, axes, seed=seed * 1000 + k)
            image = render_demo_image(labels, contrast, noise, rng)
            write_volume(out / "images" / f"{name}.tif", image)
            write_volume(out / "labels" / f"{name}.tif", labels)
            samples.append(
                {
                    "name": name,
                    "image": f"images/{name}.tif",
                    "label": f"labels/{name}.tif",
                    "spacing": [0.01, 0.01, 0.01],
                    "particle_size_px": round(2 * mean_axis, 2),
                    "split": split,
                    "group": name,
                }
            )
            k += 1
    return write_dataset_json(
        out,
        name="demo-ellipsoids",
        samples=samples,
        unit="mm",
        description="Demo: blurred, noisy packs of touching ellipsoids (not a CT phantom).",
        ood_differences="ood_test: smaller particles (semi-axes 3-6 vs 4-9 voxels), lower "
        "contrast (0.2-0.5 vs 0.35-1.0 of the resin level), more noise.",
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``python -m particleseg.synth.demo OUT_DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_demo_dataset(args.out_dir, args.size, args.seed)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
