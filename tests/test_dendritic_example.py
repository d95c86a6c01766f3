"""examples/dendritic.py end to end on the bundled data (small subset, one epoch)."""

import json
import os

import pytest

from _examples import load_example


def test_example_runs_compares_and_grid_searches(tmp_path):
    ex = load_example("dendritic")
    out = tmp_path / "out"
    runs, extra = ex.main(["--data", "fashion-mnist-small", "--subset", "1000", "--epochs", "2",
                           "--lr", "0.01",
                           "--seeds", "2", "--batch-size", "50", "--steps-to-resample", "4",
                           "--grid", "--grid-lr", "1e-2", "--grid-n-dendrite-inputs", "8", "16",
                           "--grid-n-dendrites", "4", "--grid-epochs", "1", "--quiet",
                           "--out", str(out)])
    doc = json.loads((out / "results.json").read_text())
    assert doc["backend"] == "numpy" and doc["dtype"] == "float32"
    for name in ("dendritic", "dendritic_static", "dendritic_probabilistic", "vanilla"):
        r = doc["runs"][name]
        assert len(r["test_accuracy"]) == 2 and len(r["test_accuracy_per_seed"]) == 2
        if name != "dendritic_probabilistic":  # replaces ~95 % of its synapses every 4 updates
            assert r["final_mean"] > 50, name  # 10 classes: chance is 10 %
    assert doc["runs"]["dendritic"]["n_params"] == 7360 + 230 + 230 + 10 + 110
    assert doc["runs"]["vanilla"]["n_params"] == 784 * 64 + 64 + 64 * 10 + 10
    # resampling happened in the resampled models only: 1000/50 = 20 updates per epoch
    assert doc["runs"]["dendritic"]["n_resamplings"] == [10, 10]
    assert doc["runs"]["dendritic_static"]["n_resamplings"] == [0, 0]
    eff = doc["resampling_effect"]
    assert eff["seeds"] == 2
    assert eff["difference"] == pytest.approx(eff["with_resampling"]["mean"]
                                              - eff["without_resampling"]["mean"])
    grid = doc["grid"]
    assert len(grid["table"]) == 2
    assert grid["best_params"]["n_dendrite_inputs"] in (8, 16)
    assert grid["best_test_accuracy"] == max(r["test_accuracy_mean"] for r in grid["table"])
    for f in ("curves.png", "comparison.png", "dendritic_neuron.png", "dendritic_layer.png",
              "eigenvalues.png", "grid_lr0.01.png"):
        assert os.path.getsize(out / f) > 1000, f
    assert set(doc["eigenvalues_top10"]) >= {"dendritic: dendrites W Wᵀ",
                                             "vanilla: layer 0 W Wᵀ"}


def test_example_help_and_presets(capsys):
    ex = load_example("dendritic")
    with pytest.raises(SystemExit):
        ex.parse_args(["--help"])
    text = capsys.readouterr().out
    for opt in ("--backend", "--dtype", "--seed", "--epochs", "--data", "--subset", "--out",
                "--preset", "--grid", "--seeds", "--percentage-resample"):
        assert opt in text
    a = ex.parse_args(["--preset", "original"])
    assert (a.lr, a.batch_size, a.percentage_resample, a.epochs) == (4e-3, 256, 0.1, 10)
    a = ex.parse_args(["--preset", "original", "--lr", "0.01", "--epochs", "3"])
    assert (a.lr, a.epochs) == (0.01, 3)
    a = ex.parse_args([])
    assert (a.lr, a.batch_size, a.percentage_resample, a.epochs) == (1e-3, 128, 0.25, 20)
    with pytest.raises(SystemExit):
        ex.parse_args(["--seeds", "0"])
