"""PNG previews of volumes: a slice of the image with the particles' outlines drawn on it.

``python -m particleseg.synth.preview DATASET_DIR OUT_DIR [--per-split 1] [--real TIFF]`` writes
one PNG per sample (middle Z slice and a Y slice) so a person can judge how the synthetic scans
look, optionally beside a real scan.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from particleseg.viz.slices import save_slices_png


def save_dataset_previews(dataset_dir, out_dir, per_split: int = 1, real=None) -> list[Path]:
    """Preview PNGs of the first ``per_split`` samples of every split (and a real scan).

    Returns:
        The paths written.
    """
    from particleseg.io import load_dataset, read_sample, read_volume

    dataset = load_dataset(dataset_dir)
    out = Path(out_dir)
    written = []
    for split in ("train", "val", "id_test", "ood_test"):
        for entry in dataset.split(split)[:per_split]:
            image, labels = read_sample(entry)
            path = out / f"{entry.name}.png"
            save_slices_png(path, image, labels, f"{dataset.name}: {entry.name} ({split})")
            written.append(path)
    if real is not None:
        path = out / f"real_{Path(real).stem}.png"
        save_slices_png(path, read_volume(real), None, f"real lab CT: {Path(real).name}")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--per-split", type=int, default=1)
    parser.add_argument("--real", default=None, help="a real scan to show beside them")
    args = parser.parse_args(argv)
    for path in save_dataset_previews(args.dataset_dir, args.out_dir, args.per_split, args.real):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
