"""Score predictions, or the ThreshWater baseline, against a dataset's reference labels.

    python evaluate.py dataset=PATH [predictions=DIR] [splits=[id_test]] [output_dir=DIR]
    python evaluate.py --config-name report   # the default model vs ThreshWater -> docs/results.md

See conf/evaluate.yaml for every option.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Compose the config and run :func:`particleseg.tasks.evaluate`."""
    from particleseg.tasks import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
