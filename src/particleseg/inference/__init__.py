"""Inference: chunked, resumable, distributed border-core prediction of whole scans.

``plan`` (which windows each chunk runs), ``windows`` (their Gaussian-weighted sums),
``chunk_store`` (spill pieces, markers, the plan-aligned zarr outputs), ``lightning`` (the
network stage as ``Trainer.predict``), ``inputs`` (scans and their particle size), ``cost``,
``run_state``, ``cpu_stages`` and ``pipeline.predict_scan`` (the stages of predict.py);
``sliding_window`` and ``model`` are the in-memory building blocks.
"""
