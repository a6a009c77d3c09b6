"""Score predictions, or a classical baseline, against a dataset's reference labels.

    python evaluate.py dataset=PATH [predictions=DIR] [splits=[id_test]] [output_dir=DIR]
    python evaluate.py dataset=PATH baseline=snow   # porespy's SNOW instead of ThreshWater
    python evaluate.py --config-name report   # the default model vs ThreshWater -> docs/results.md

See conf/evaluate.yaml for every option.
"""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Compose the config and run :func:`particleseg.tasks.evaluate`.

    Bad input (a ValueError naming the file and the problem) ends the run with that message
    and exit status 2, not a traceback.
    """
    from particleseg.tasks import evaluate

    try:
        evaluate(cfg)
    except ValueError as err:
        print(f"evaluate.py: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
