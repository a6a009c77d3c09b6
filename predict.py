"""predict.py: segment a scan (or a dataset folder) with a trained model (see README.md).

python predict.py input=scan.tif model=best.ckpt particle_size_px=40
python predict.py input=scan.tif model=best.ckpt particle_size=auto trainer.devices=2
"""

import hydra
from omegaconf import DictConfig

import particleseg.config  # noqa: F401  (registers the resolvers the configs use)
from particleseg.entry import guarded, quiet_third_party, take_debug_flag, take_dry_run_flag


@hydra.main(version_base="1.3", config_path="conf/predict", config_name="predict")
def main(cfg: DictConfig) -> None:
    """Compose the config and run :func:`particleseg.tasks.predict`.

    Bad input (a ValueError or OS error naming the file and the problem) ends the run with
    that message and exit status 2, not a traceback (``--debug`` shows the traceback).
    """
    from particleseg.tasks import predict

    quiet_third_party()
    guarded("predict.py", lambda: predict(cfg))


if __name__ == "__main__":
    take_debug_flag()
    take_dry_run_flag()
    main()
