"""Score predictions, or a classical baseline, against a dataset's reference labels.

    python evaluate.py dataset=PATH [predictions=DIR] [splits=[id_test]] [output_dir=DIR]
    python evaluate.py dataset=PATH baseline=snow   # porespy's SNOW instead of ThreshWater
    python evaluate.py --config-name report   # the default model vs ThreshWater -> docs/results.md

See conf/evaluate.yaml for every option.
"""

import hydra
from omegaconf import DictConfig

from particleseg.entry import guarded, quiet_third_party, take_debug_flag


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Compose the config and run :func:`particleseg.tasks.evaluate`.

    Bad input (a ValueError or OS error naming the file and the problem) ends the run with
    that message and exit status 2, not a traceback (``--debug`` shows the traceback).
    """
    from particleseg.tasks import evaluate

    quiet_third_party()
    guarded("evaluate.py", lambda: evaluate(cfg))


if __name__ == "__main__":
    take_debug_flag()
    main()
