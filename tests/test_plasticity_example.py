"""examples/bio_transformations.py runs end to end on the bundled data (small and fast)."""

import json

import pytest

from _examples import load_example


def test_example_writes_results_and_figures(tmp_path):
    mod = load_example("bio_transformations")
    out = tmp_path / "out"
    variants = ["baseline", "default_chain", "dales_principle", "weight_splitting", "rejuvenate_weights"]
    mod.main(["--data", "fashion-mnist-small", "--subset", "400", "--epochs", "2", "--hidden", "32",
              "--batch-size", "50", "--rules", "backprop", "feedback_alignment", "--transforms", *variants,
              "--out", str(out), "--quiet"])
    doc = json.loads((out / "results.json").read_text())
    assert doc["backend"] == "numpy" and doc["dtype"] == "float32" and "versions" in doc
    assert set(doc["runs"]) == {f"{r}/{v}" for r in ("backprop", "feedback_alignment") for v in variants}
    for name, run in doc["runs"].items():
        assert len(run["test_accuracy"]) == 2 and len(run["epoch_seconds"]) == 2, name
        assert all(0 <= a <= 100 for a in run["test_accuracy"])
        assert sum(run["weight_hist_before"]) == sum(run["weight_hist_after"]) == 32 * 784
    chain = doc["runs"]["backprop/default_chain"]
    assert len(chain["crystallized_fraction"]) == 2 and 0 < chain["crystallized_fraction"][-1] < 1
    assert chain["bio_config"]["transforms"] == ["fuzzy_learning_rates", "crystallize", "volume_dependent_lr"]
    assert doc["runs"]["feedback_alignment/dales_principle"]["dale_violations"] == 0
    assert doc["runs"]["backprop/baseline"]["test_accuracy"][-1] > 50          # it learns
    for f in ("accuracy_backprop.png", "accuracy_feedback_alignment.png", "weights_backprop.png",
              "crystallized.png"):
        assert (out / f).stat().st_size > 1000, f


def test_example_rejects_bad_options(tmp_path):
    mod = load_example("bio_transformations")
    with pytest.raises(SystemExit):
        mod.main(["--transforms", "nonsense", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--gamma"):
        mod.main(["--data", "fashion-mnist-small", "--gamma", "0", "--out", str(tmp_path), "--quiet"])
    with pytest.raises(SystemExit, match="--rejuvenate-every"):
        mod.main(["--data", "fashion-mnist-small", "--rejuvenate-every", "0", "--out", str(tmp_path),
                  "--quiet"])
