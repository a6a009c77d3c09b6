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
    ],
)
def test_stage_does_not_import_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
