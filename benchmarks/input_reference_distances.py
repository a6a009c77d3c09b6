"""How far scans are from a model's input reference: the figures of the model card.

Prints, per scan, the 1-Wasserstein distance of its normalized histogram to the nearest of the
model's reference scans, that scan, and whether predict would warn (distance > threshold)::

    python benchmarks/input_reference_distances.py            # the shipped model; needs data/synth,
                                                              # data/ood_independent
    python benchmarks/input_reference_distances.py --model M.ckpt SCAN [SCAN ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from particleseg.inference.model import load_checkpoint  # noqa: E402
from particleseg.io import read_volume  # noqa: E402
from particleseg.synth.sample import bundled_sample  # noqa: E402
from particleseg.transforms.input_reference import (  # noqa: E402
    compare_to_reference,
    normalized_sample,
)

DEFAULT_SCANS = (
    "data/synth/images/id_test_000.tif",
    "data/synth/images/ood_test_000.tif",
    "data/ood_independent/images/indep_000.tif",
    "data/ood_independent/images/indep_001.tif",
    "../shared/data/real/soil_xct_crop_uint8.tif",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scans", nargs="*", help="scans (default: the model card's)")
    parser.add_argument("--model", default=str(ROOT / "src/particleseg/weights/default.ckpt"))
    args = parser.parse_args()
    model = load_checkpoint(args.model)
    if not model.input_reference:
        print(
            f"{args.model}: stores no input reference (export it with --reference)", file=sys.stderr
        )
        sys.exit(2)
    scans = args.scans or [str(bundled_sample()), *(str(ROOT / p) for p in DEFAULT_SCANS)]
    print(f"threshold {model.input_reference['threshold']:.3f}")
    for path in scans:
        if not Path(path).exists():
            print(f"{path}: missing, skipped")
            continue
        found = compare_to_reference(
            normalized_sample(read_volume(path), model.normalization), model.input_reference
        )
        verdict = "warned" if found["far"] else "no warning"
        print(f"{path}: {found['distance']:.3f} (nearest {found['nearest']}, {verdict})")


if __name__ == "__main__":
    main()
