"""What the entry points call, one module per task, each ``task(cfg)`` on a composed config.

``train`` (:mod:`.train`), ``predict`` (:mod:`.predict`), ``evaluate`` (:mod:`.evaluate`) and
``run_report`` (:mod:`.report`, ``python evaluate.py --config-name report``).
"""

from particleseg.tasks.evaluate import evaluate
from particleseg.tasks.predict import format_predict_summary, predict
from particleseg.tasks.report import run_report
from particleseg.tasks.train import train

__all__ = ["evaluate", "format_predict_summary", "predict", "run_report", "train"]
