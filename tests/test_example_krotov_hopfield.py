"""examples/krotov_hopfield.py: a tiny run on the bundled subset through its main()."""

import json

import pytest

from bionp.experiment import readable

from _examples import load_example


@pytest.fixture(scope="module")
def example():
    return load_example("krotov_hopfield")


def test_tiny_run_writes_results_and_figures(example, tmp_path, capsys):
    out = tmp_path / "kh"
    got = example.main(["--data", "fashion-mnist-small", "--subset", "300", "--hidden", "30",
                        "--epochs", "2", "--clf-epochs", "2", "--seeds", "2", "--grid", "4", "9",
                        "--also", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert "learned" in printed and "random" in printed and "margin" in printed
    doc = json.loads((out / "results.json").read_text())
    assert {"config", "backend", "dtype", "versions", "runs", "summary"} <= set(doc)
    assert doc["backend"] == "numpy" and doc["dtype"] == "float32"
    assert doc["config"]["hidden"] == 30 and doc["config"]["p"] == 3.0 and doc["config"]["k"] == 7
    names = {f"fashion-mnist-small/{kind}/seed{s}" for kind in ("learned", "random") for s in (0, 1)}
    assert set(doc["runs"]) == names
    for name in names:
        run = doc["runs"][name]
        assert len(run["test_accuracy"]) == 2 and len(run["epoch_seconds"]) == 2
        assert all(0.0 <= a <= 100.0 for a in run["test_accuracy"])
    learned = doc["runs"]["fashion-mnist-small/learned/seed0"]
    assert len(learned["convergence_curve"]) == 2 and len(learned["hebbian_history"]) == 2
    stats = learned["norm_statistics"]
    assert 0.0 <= stats["converged_fraction"] <= 1.0 and stats["tol"] == 0.05
    assert 0.0 <= stats["active_fraction"] <= 1.0
    assert 0.0 <= learned["hebbian_history"][-1]["attracting_fraction"] <= 1.0
    assert stats["norm_quantiles_of_winners"]["min"] <= stats["norm_quantiles_of_winners"]["max"]
    summary = doc["summary"]["fashion-mnist-small"]
    assert summary["learned"]["values"] == [doc["runs"][f"fashion-mnist-small/learned/seed{s}"]
                                            ["final_test_accuracy"] for s in (0, 1)]
    # results.json holds the floats rounded for reading (bionp.experiment.readable)
    assert summary == readable(got["summary"]["fashion-mnist-small"])
    import numpy as np

    for seed in (0, 1):
        W = np.load(out / f"weights_fashion-mnist-small_seed{seed}.npy", allow_pickle=False)
        assert W.shape == (30, 784) and W.dtype == np.float32
    for png in ("weights_fashion-mnist-small.png", "training_fashion-mnist-small.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_seed_configuration_and_overrides(example):
    args = example.parse_args(["--config", "seed"])
    assert (args.hidden, args.p, args.k, args.delta, args.lr, args.precision) == (28, 2.0, 5, 0.3,
                                                                                 0.01, 0.1)
    assert args.inputs == "signed" and args.init == "uniform"
    args = example.parse_args(["--config", "seed", "--hidden", "40", "--k", "3"])
    assert (args.hidden, args.k, args.p) == (40, 3, 2.0)
    paper = example.parse_args([])
    assert (paper.hidden, paper.p, paper.k, paper.delta, paper.power, paper.m) == (
        2000, 3.0, 7, 0.4, 4.5, 6.0)
    assert paper.inputs == "unit-norm" and paper.epochs == 3 and args.epochs == 40
    assert (paper.loss, paper.feature_scaling) == ("power", "max")
    conv = example.parse_args(["--config", "converged"])
    assert (conv.hidden, conv.p, conv.k, conv.delta, conv.lr, conv.epochs, conv.power) == (
        2000, 3.0, 7, 0.1, 0.02, 100, 4.5)
    assert (conv.loss, conv.beta, conv.feature_scaling, conv.clf_epochs) == (
        "cross_entropy", 1.0, "standardize", 60)
    assert example.parse_args(["--config", "converged", "--loss", "power"]).loss == "power"
    assert example.parse_args(["--epochs", "7"]).epochs == 7


def test_missing_dataset_is_skipped(example, tmp_path, capsys):
    args = example.parse_args(["--data-root", str(tmp_path), "--subset", "10"])
    assert example.load_dataset(args, "cifar10", primary=False) is None
    assert "[skip] cifar10" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--clf-epochs", "0"], "--clf-epochs must be >= 1"),
])
def test_bad_options(example, argv, match, capsys):
    with pytest.raises(SystemExit):
        example.parse_args(argv)
    assert match in capsys.readouterr().err


def test_input_scaling(example):
    import numpy as np

    x = np.array([[0.0, 0.5, 1.0], [0.25, 0.25, 0.0]], dtype=np.float32)
    unit = example.scale_inputs(x, "unit-norm")
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(example.scale_inputs(x, "signed"), 2 * x - 1)
    raw = example.scale_inputs(x, "raw")
    np.testing.assert_array_equal(raw, x)
    assert raw is not x


def test_tiny_run_of_the_converged_preset(example, tmp_path):
    """The converged preset's readout (standardised features, cross-entropy) runs end to end."""
    got = example.main(["--config", "converged", "--data", "fashion-mnist-small", "--subset", "300",
                        "--hidden", "30", "--epochs", "2", "--clf-epochs", "2", "--seeds", "1",
                        "--grid", "3", "3", "--also", "--no-save-weights", "--out",
                        str(tmp_path / "kh"), "--quiet"])
    summary = got["summary"]["fashion-mnist-small"]
    assert 10.0 < summary["learned"]["mean"] <= 100.0 and 10.0 < summary["random"]["mean"] <= 100.0
    assert summary["active_fraction"]["values"][0] > 0.0
