"""particleseg's napari plugin (npe2 manifest ``particleseg/napari.yaml``).

- :mod:`.reader`: opens a particleseg result folder (labels with scale, the scan, the table);
- :mod:`.predict_widget`: "Segment particles", predict in a worker thread with progress and cancel;
- :mod:`.tools`: the annotation tools (:mod:`particleseg.annotation.widgets`) as dock widgets.

Install with ``pip install 'particleseg[napari]'``; napari lists the plugin under Plugins.
"""
