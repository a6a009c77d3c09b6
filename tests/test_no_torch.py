import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "particleseg.spacing",
        "particleseg.nearest_index",
        "particleseg.targets",
        "particleseg.metrics",
        "particleseg.baselines",
        "particleseg.io",
        "particleseg.synth",
        "particleseg.postprocess",
        "particleseg.analysis",
        "particleseg.evaluation",
        "particleseg.viz",
    ],
)
def test_stage_does_not_import_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_metrics_compute_only():
    """The metrics import no plotting, no torch and no stage above them (evaluation, viz, ...).

    ``metrics.distribution`` measures sizes with :mod:`particleseg.analysis` (below them).
    """
    code = (
        "import sys, particleseg.metrics, particleseg.metrics.examples, "
        "particleseg.metrics.distribution; "
        "up = ('evaluation', 'viz', 'inference', 'tasks', 'models', 'training', 'synth'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib') or "
        "(m.startswith('particleseg.') and m.split('.')[1] in up)]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
