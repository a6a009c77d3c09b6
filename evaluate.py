"""evaluate.py: score predictions, or a classical baseline, against reference labels.

The same as ``particleseg evaluate`` (``--config-name report``: ``particleseg report``):

    python evaluate.py dataset=PATH [predictions=DIR] [splits=[id_test]] [output_dir=DIR]
    python evaluate.py dataset=PATH baseline=snow   # porespy's SNOW instead of ThreshWater
    python evaluate.py --config-name report   # the default model vs ThreshWater -> docs/results.md

See src/particleseg/conf/evaluate.yaml for every option.
"""

import sys

from particleseg.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["evaluate", *sys.argv[1:]], prog="evaluate.py"))
