"""predict.py: segment a scan (or a dataset folder) with a trained model (see README.md).

python predict.py input=scan.tif model=best.ckpt particle_size_px=40
python predict.py input=scan.tif model=best.ckpt particle_size=auto trainer.devices=2
"""

import sys

import hydra
from omegaconf import DictConfig

import particleseg.config  # noqa: F401  (registers the resolvers the configs use)


@hydra.main(version_base="1.3", config_path="conf/predict", config_name="predict")
def main(cfg: DictConfig) -> None:
    """Compose the config and run :func:`particleseg.tasks.predict`.

    Bad input (a ValueError naming the file and the problem) ends the run with that message
    and exit status 2, not a traceback.
    """
    from particleseg.tasks import predict

    try:
        predict(cfg)
    except ValueError as err:
        print(f"predict.py: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
