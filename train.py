"""train.py: train the border-core U-Net (see README.md "Training").

The same as ``particleseg train``:

python train.py experiment=cpu_small
python train.py experiment=cpu_small sweep=particle_size_border
python train.py resume=outputs/train/RUN
"""

import sys

from particleseg.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["train", *sys.argv[1:]], prog="train.py"))
