import subprocess
import sys


def test_annotation_imports_neither_torch_nor_napari():
    code = (
        "import sys, particleseg.annotation, particleseg.annotation.cli, "
        "particleseg.annotation.widgets, particleseg.annotation.screenshots\n"
        "bad = [m for m in ('torch', 'napari', 'magicgui', 'qtpy') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
