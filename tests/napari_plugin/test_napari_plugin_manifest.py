"""The npe2 manifest: valid, installed with the package, and every command importable."""

import pytest

npe2 = pytest.importorskip("npe2")


def test_manifest_is_valid_and_its_commands_import():
    manifest = npe2.PluginManifest.from_distribution("particleseg")
    manifest.validate_imports()  # what `npe2 validate particleseg --imports` does
    widgets = {w.display_name for w in manifest.contributions.widgets}
    assert widgets == {"Segment particles", "Scribble classifier", "Split particle", "Save sample"}
    (reader,) = manifest.contributions.readers
    assert reader.accepts_directories
