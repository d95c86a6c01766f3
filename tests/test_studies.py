"""bionp.studies: compare_models, hyperparameter_tuning: tables, seed statistics, plots, grids."""

import os

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim
from bionp.dendritic import count_parameters
from bionp.studies import ModelConfig, compare_models, hyperparameter_tuning
from bionp.sweep import SweepConfigError


def _data(n=240, n_test=120, d=12, classes=3, seed=0):
    """Linearly separable-ish classes from a random teacher (active backend)."""
    g = bnp.random.Generator(seed)
    teacher = g.normal(0, 1, (classes, d))
    x = g.normal(0, 1, (n + n_test, d))
    xp = bnp.get_array_module(x)
    y = xp.argmax(x @ teacher.T, axis=1)
    return x[:n], y[:n], x[n:], y[n:]


def _mlp(hidden):
    def factory(seed):
        return nn.MLP([12, hidden, 3], activation="relu", init="he_normal", rng=seed)
    return factory


def test_compare_models_table_curves_and_seed_statistics(xp, tmp_path):
    data = _data()
    configs = [
        {"name": "small", "model": _mlp(4), "lr": 0.01},
        ModelConfig(name="wide", model=_mlp(32), optimizer="sgd", lr=0.1,
                    optimizer_kwargs={"momentum": 0.9}),
    ]
    res = compare_models(configs, data, epochs=3, batch_size=20, seeds=(0, 1, 2),
                         out=tmp_path)
    assert [r["model"] for r in res.table] == ["small", "wide"]
    for name, hidden in (("small", 4), ("wide", 32)):
        run = res.runs[name]
        assert run["n_params"] == count_parameters(_mlp(hidden)(0)) == 12 * hidden + hidden \
            + hidden * 3 + 3
        per_seed = np.asarray(run["test_accuracy_per_seed"])
        assert per_seed.shape == (3, 3)
        np.testing.assert_allclose(run["test_accuracy"], per_seed.mean(axis=0))
        np.testing.assert_allclose(run["test_accuracy_std"], per_seed.std(axis=0, ddof=1))
        assert run["final_test_accuracy"] == per_seed[:, -1].tolist()
        assert len(run["epoch_seconds"]) == 3 and all(s > 0 for s in run["seconds"])
        assert run["seeds"] == [0, 1, 2]
    row = res.table[1]
    assert row["parameters"] == res.runs["wide"]["n_params"]
    assert row["final acc %"] == pytest.approx(np.mean(res.runs["wide"]["final_test_accuracy"]))
    # a 32-unit MLP trained with momentum learns the teacher well above chance (33 %)
    assert row["final acc %"] > 70
    assert "wide" in res.format_table()
    for f in ("comparison.png", "curves.png"):
        assert os.path.getsize(tmp_path / f) > 1000
    # seeds differ from each other, but the same seed gives the same numbers
    assert len({tuple(r) for r in res.runs["wide"]["test_accuracy_per_seed"]}) > 1
    again = compare_models(configs[1:], data, epochs=3, batch_size=20, seeds=(1,))
    assert again.runs["wide"]["test_accuracy"] == res.runs["wide"]["test_accuracy_per_seed"][1]


def test_compare_models_accepts_the_seeds_tuples_and_built_networks():
    data = _data()
    net = nn.MLP([12, 8, 3], activation="relu", rng=0)
    res = compare_models([(net, optim.Adam(net, lr=0.01), "built")], data, epochs=1,
                         batch_size=40)
    assert res.runs["built"]["n_params"] == net.n_params
    net2 = nn.MLP([12, 8, 3], activation="relu", rng=0)
    with pytest.raises(ValueError, match="a built network trains once"):
        compare_models([{"name": "b", "model": net2}], data, epochs=1, seeds=(0, 1))


@pytest.mark.parametrize("configs, match", [
    ([], "configs is empty"),
    ([{"name": "a"}], r"missing \['model'\]"),
    ([{"name": "a", "model": _mlp(3), "learning_rate": 0.1}],
     r"unknown key\(s\) \['learning_rate'\]"),
    ([{"name": "a", "model": _mlp(3)}, {"name": "a", "model": _mlp(4)}], "must be unique"),
    ([{"name": "", "model": _mlp(3)}], "non-empty str"),
    ([{"name": "a", "model": _mlp(3), "optimizer": "rmsprop"}], "unknown optimizer 'rmsprop'"),
    ([{"name": "a", "model": _mlp(3), "rule": "hebb"}], "unknown rule 'hebb'"),
])
def test_compare_models_bad_configs(configs, match):
    with pytest.raises(ValueError, match=match):
        compare_models(configs, _data(), epochs=1)


def test_compare_models_bad_arguments():
    cfg = [{"name": "a", "model": _mlp(3)}]
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        compare_models(cfg, _data(), epochs=0)
    with pytest.raises(ValueError, match="batch_size must be"):
        compare_models(cfg, _data(), batch_size=0)
    with pytest.raises(ValueError, match="seeds is empty"):
        compare_models(cfg, _data(), seeds=[])
    with pytest.raises(TypeError, match="dataset must be a data set name"):
        compare_models(cfg, {"x": 1})
    with pytest.raises(TypeError, match="model must be a factory"):
        compare_models([{"name": "a", "model": 3}], _data())
    with pytest.raises(TypeError, match="must give a network"):
        compare_models([{"name": "a", "model": lambda seed: "net"}], _data())


# -- hyperparameter_tuning ------------------------------------------------------------------------
def _factory(hidden, lr, seed):
    net = nn.MLP([12, hidden, 3], activation="relu", init="he_normal", rng=seed)
    return net, optim.Adam(net, lr=lr)


def test_hyperparameter_tuning_full_grid_best_and_table(xp, tmp_path):
    data = _data()
    grid = {"lr": [1e-4, 3e-2], "hidden": [2, 16]}
    res = hyperparameter_tuning(_factory, grid, data, epochs=3, batch_size=20,
                                store=tmp_path / "grid.jsonl")
    assert len(res.table) == 4 and len(res.records) == 4
    assert {(r["lr"], r["hidden"]) for r in res.table} == {(1e-4, 2), (1e-4, 16), (3e-2, 2),
                                                           (3e-2, 16)}
    means = [r["mean"] for r in res.table]
    assert means == sorted(means, reverse=True)           # best first
    assert res.best_score == max(means)
    assert res.best_params == {"lr": 3e-2, "hidden": 16}  # the obvious winner of this grid
    assert res.metric == "test_accuracy" and res.mode == "max"
    assert "hidden" in res.format_table()
    # resumable: a rerun finds every task in the store and gives the same table
    again = hyperparameter_tuning(_factory, grid, data, epochs=3, batch_size=20,
                                  store=tmp_path / "grid.jsonl")
    assert [r["mean"] for r in again.table] == means


def test_hyperparameter_tuning_training_params_loss_metric_and_repeats():
    data = _data()

    def factory(hidden, seed):  # returns only the network: lr and batch_size go to training
        return nn.MLP([12, hidden, 3], activation="relu", init="he_normal", rng=seed)

    res = hyperparameter_tuning(factory, {"hidden": [8], "lr": [1e-5, 1e-2],
                                          "batch_size": [20]}, data, epochs=2,
                                metric="test_loss", repeats=2)
    assert res.mode == "min" and len(res.records) == 4
    assert all(r["n"] == 2 for r in res.table)
    assert res.best_params["lr"] == 1e-2
    assert res.table[0]["mean"] <= res.table[1]["mean"]


@pytest.mark.parametrize("grid, match", [
    ({"lr": [0.1], "hiden": [4]}, r"unknown parameter 'hiden'.*Did you mean 'hidden'"),
    ({"lr": [0.1], "n_layers": [2]}, "unknown parameter 'n_layers'"),
    ({"lr": [], "hidden": [4]}, "parameter 'lr' has an empty list"),
    ({}, "grid is empty"),
    ({"lr": 0.1}, "must be a list"),
])
def test_hyperparameter_tuning_bad_grids(grid, match):
    with pytest.raises(SweepConfigError, match=match):
        hyperparameter_tuning(_factory, grid, _data(), epochs=1)
    assert issubclass(SweepConfigError, ValueError)


def test_hyperparameter_tuning_bad_arguments_and_failures():
    with pytest.raises(ValueError, match="metric must be one of"):
        hyperparameter_tuning(_factory, {"lr": [0.1]}, _data(), metric="accuracy")
    with pytest.raises(TypeError, match="factory must be callable"):
        hyperparameter_tuning("factory", {"lr": [0.1]}, _data())

    def broken(hidden, seed):
        raise RuntimeError("no network today")

    with pytest.raises(RuntimeError, match="(?s)every configuration failed.*no network today"):
        hyperparameter_tuning(broken, {"hidden": [3]}, _data(), epochs=1)

    def kwargs_factory(seed, **params):  # accepts any name
        return _factory(params["hidden"], 0.01, seed)

    res = hyperparameter_tuning(kwargs_factory, {"hidden": [4], "anything": [1]}, _data(),
                                epochs=1)
    assert res.best_params == {"hidden": 4, "anything": 1}



def _factory784(hidden, lr, seed):
    net = nn.MLP([784, hidden, 10], activation="relu", init="he_normal", rng=seed)
    return net, optim.Adam(net, lr=lr)


def test_tuning_task_pickles_for_dask_workers():
    """The task sent to Dask workers is a module-level class: it pickles with its factory
    and loads a named data set itself."""
    import pickle

    from bionp.studies.tuning import _TuningTask

    task = _TuningTask(_factory784, "fashion-mnist-small", 1, 32, "adam", "backprop",
                       "cross_entropy", 300, None, None, "numpy", "float32",
                       {"hidden", "lr"}, False, "seed")
    clone = pickle.loads(pickle.dumps(task))
    metrics = clone({"hidden": 4, "lr": 0.01}, 7)
    assert len(metrics["test_accuracy"]) == 1
    assert metrics["n_params"] == 784 * 4 + 4 + 4 * 10 + 10


def test_compare_dendritic_networks_under_several_rules(xp):
    """A dendritic first layer trains with backprop, FA and KP through compare_models and the
    Trainer, which resamples its synapses after every ``steps_to_resample`` updates."""
    from bionp.dendritic import DendriticLayer

    def dendritic(seed):
        layer = DendriticLayer(12, 6, 4, 3, steps_to_resample=3, percentage_resample=0.25,
                               rng=seed)
        return nn.Sequential([layer, nn.Dense(6, 3, init="he_normal", rng=seed + 1)],
                             activations=[nn.LeakyReLU(0.1), "identity"])

    configs = [{"name": rule, "model": dendritic, "rule": rule, "lr": 0.02}
               for rule in ("backprop", "feedback_alignment", "kolen_pollack")]
    configs.append({"name": "fa_callable", "model": dendritic, "lr": 0.02,
                    "rule": lambda rng: __import__("bionp").rules.FeedbackAlignment(rng=rng)})
    res = compare_models(configs, _data(), epochs=6, batch_size=20, seeds=(0, 1))
    for name, run in res.runs.items():
        assert run["n_resamplings"] == [24, 24], name  # 240 / 20 * 6 updates, every 3rd
        assert run["final_mean"] > 50, (name, [r["final_mean"] for r in res.runs.values()])           # chance is 33 %
        assert run["n_params"] == 6 * 3 * 4 + 18 + 18 + 6 + 6 * 3 + 3
    # FA given by name and by a callable draw the same feedback from the same seed
    assert res.runs["feedback_alignment"]["test_accuracy_per_seed"] == \
        res.runs["fa_callable"]["test_accuracy_per_seed"]


def test_studies_left_the_dendritic_package():
    """Comparisons and grids are faces (bionp.studies): bionp.dendritic no longer has them and
    says where they went."""
    import bionp.dendritic
    import bionp.studies

    assert bionp.studies.compare_models is compare_models
    assert bnp.studies.hyperparameter_tuning is hyperparameter_tuning
    for name in ("compare_models", "hyperparameter_tuning", "ModelConfig", "Comparison",
                 "TuningResult"):
        assert name not in bionp.dendritic.__all__
        with pytest.raises(AttributeError, match=f"from bionp.studies import {name}"):
            getattr(bionp.dendritic, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        bionp.dendritic.nothing  # noqa: B018
