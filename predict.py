"""predict.py: segment a scan (or a folder of scans, or a dataset) with a trained model.

The same as ``particleseg predict`` (see README.md and ``python predict.py --help``):

python predict.py input=scan.tif particle_size_px=40
python predict.py input=scan.tif model=best.ckpt particle_size=auto trainer.devices=2
"""

import sys

from particleseg.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["predict", *sys.argv[1:]], prog="predict.py"))
