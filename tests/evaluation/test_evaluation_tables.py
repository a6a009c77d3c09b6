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
