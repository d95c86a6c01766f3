"""examples/leaky_tensors.py runs end to end on the bundled data and writes what it says."""

import json

import pytest

from _examples import load_example


def _main():
    return load_example("leaky_tensors").main


def test_leaky_tensors_example_fast(tmp_path):
    out = tmp_path / "out"
    runs, summary = _main()(["--data", "fashion-mnist-small", "--subset", "600", "--epochs", "1",
                             "--hidden", "16", "--repeats", "2", "--test-sigmas", "0", "0.05", "0.2",
                             "--n-seeds", "2", "--sigma-every", "2", "--quiet", "--out", str(out)])
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["runs"]) == {"baseline", "fixed", "learnable"}
    for name in ("accuracy.png", "loss.png", "robustness.png", "sigma.png"):
        assert (out / name).stat().st_size > 1000, name
    run = doc["runs"]["learnable"]
    assert set(run["seeds"]) == {"0", "1"}
    assert len(run["test_accuracy"]) == 1 and len(run["epoch_seconds"]) == 1
    rob = run["robustness"]
    assert rob["sigmas"] == [0.0, 0.05, 0.2] and len(rob["mean"]) == 3
    trace = run["seeds"]["0"]["sigma_trace"]
    assert trace["step"][0] == 0 and len(trace["step"]) > 2
    assert abs(trace["sigma"][0][0] - 0.0498) < 1e-3  # e^-3
    assert doc["runs"]["baseline"]["seeds"]["0"]["learned_sigma"] == [[None, None]]
    m = summary["models"]
    assert set(m) == {"baseline", "fixed", "learnable"}
    assert "noisy_minus_baseline" in m["fixed"]
    # merging the folder again reproduces the summary without training
    _, again = _main()(["--merge", str(out), "--out", str(tmp_path / "merged"), "--quiet"])
    assert again == summary


def test_leaky_tensors_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _main()(["--test-sigmas", "0", "-0.1", "--out", str(tmp_path)])
    assert "negative" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _main()(["--test-sigmas", "0", "0.1", "--eval-sigma", "0.05", "--out", str(tmp_path)])
    assert "not on --test-sigmas" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _main()(["--train-sigma", "nan", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        _main()(["--mode", "salt", "--out", str(tmp_path)])
