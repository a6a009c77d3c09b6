from particleseg.evaluation.tables import read_metric_history
from particleseg.viz.figures import plot_training_curves


def test_history_joins_resumed_csv_files_and_plots(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("epoch,step,train/loss,val/f1_instance\n0,10,2.0,\n1,20,,0.3\n1,20,1.5,\n")
    b.write_text("epoch,step,train/loss,val/f1_instance\n1,20,,0.35\n2,30,1.2,0.5\n")
    h = read_metric_history([a, b])
    assert h["val/f1_instance"] == [(1, 0.35), (2, 0.5)]  # the resumed value wins
    assert h["train/loss"] == [(0, 2.0), (1, 1.5), (2, 1.2)]
    plot_training_curves(tmp_path / "c.png", h)
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_summary_has_the_per_scan_mean_and_the_pooled_scores():
    import numpy as np

    from particleseg.evaluation.tables import summarize
    from particleseg.metrics import evaluate_instances

    ref = np.zeros((4, 4, 12), np.uint32)
    ref[:, :, :6], ref[:, :, 6:] = 1, 2
    small = evaluate_instances(ref[:, :, :6], ref[:, :, :6])  # 1 particle, perfect
    split = ref.copy()
    split[:, :, 3:6] = 3  # 2 reference particles, the first split in two
    big = evaluate_instances(split, ref)
    rows = [{"sample": "a", "split": "t", **small}, {"sample": "b", "split": "t", **big}]
    s = summarize(rows)["t"]
    assert s["mean"]["splitter_ratio"] == (0.0 + 1 / 2) / 2  # mean of 0 and 1/2
    assert s["pooled"]["splitter_ratio"] == 1 / 3  # 1 extra part over 3 reference particles
    assert s["total"]["n_ref"] == 3
