"""examples/conv_rules.py: LeNet by every rule on the bundled subset, through bionp.sweep,
with tiny settings; results.json, figures, mean ± std over seeds, resume from the store."""

import json

import numpy as np

import pytest

from _examples import load_example

TINY = ["--data", "fashion-mnist-small", "--subset", "128", "--epochs", "1", "--batch-size",
        "64", "--test-size", "100", "--align-samples", "32", "--quiet"]
WEIGHT_LAYERS = [0, 2, 4, 6, 7]  # LeNet: conv, pool, conv, pool, conv, flatten, dense, dense


@pytest.fixture(scope="module")
def example():
    return load_example("conv_rules")


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_every_rule_one_seed(example, tmp_path, capsys):
    out = tmp_path / "all"
    example.main(TINY + ["--out", str(out)])
    printed = capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    assert {"config", "backend", "dtype", "versions", "runs"} <= set(doc)
    assert list(doc["runs"]) == list(example.RULES) == [
        "backprop", "fa", "dfa", "kp", "usf", "brsf", "frsf", "wp", "np"]
    for name, run in doc["runs"].items():
        assert name in printed
        assert len(run["test_accuracy"]) == 1 and 0.0 <= run["test_accuracy"][0] <= 100.0
        assert run["learning_rate"] == example.RULES[name].lr and len(run["seeds"]) == 1
        assert run["test_error"] == pytest.approx(100.0 - run["test_accuracy"][-1])
        assert run["stopped"] == [None]
        # angles before training (index 0) and after the epoch; None for pooling and flatten
        assert len(run["alignment_angle"]) == 2
        for angles in run["alignment_angle"]:
            assert len(angles) == 8
            assert [l for l, a in enumerate(angles) if a is not None] == WEIGHT_LAYERS
            assert all(0.0 <= angles[l] <= 180.0 for l in WEIGHT_LAYERS)
    bp0 = doc["runs"]["backprop"]["alignment_angle"][0]
    assert max(bp0[l] for l in WEIGHT_LAYERS) < 0.1  # backprop vs itself
    assert doc["runs"]["fa"]["alignment_angle"][0][0] > 30  # random B: far from backprop
    # the output layer's update is backprop's for the error-propagation rules
    for name in ("fa", "dfa", "kp", "usf", "brsf", "frsf"):
        assert doc["runs"][name]["alignment_angle"][0][7] < 0.1
    _png(out / "accuracy.png")
    _png(out / "alignment.png")


def test_seeds_mean_std_and_resume(example, tmp_path, capsys):
    out = tmp_path / "seeds"
    argv = TINY + ["--rules", "backprop", "fa", "--seeds", "2", "--out", str(out)]
    runs = example.main(argv)
    assert set(runs) == {"backprop", "fa"}
    for run in runs.values():
        per_seed = run["test_accuracy_per_seed"]
        assert len(per_seed) == 2 and len(set(run["seeds"])) == 2
        import numpy as np

        assert run["final_test_accuracy_mean"] == pytest.approx(np.mean([s[-1] for s in per_seed]))
        assert run["final_test_accuracy_std"] == pytest.approx(np.std([s[-1] for s in per_seed],
                                                                      ddof=1))
    assert "±" in capsys.readouterr().out
    lines = (out / "sweep.jsonl").read_text().splitlines()
    # a rerun finds every task in the store and trains nothing
    again = example.main(argv)
    assert (out / "sweep.jsonl").read_text().splitlines() == lines
    assert again["fa"]["test_accuracy_per_seed"] == runs["fa"]["test_accuracy_per_seed"]


@pytest.mark.parametrize("argv, match", [
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--lr", "-1"], "--lr must be > 0"),
    (["--rules", "sgd"], "invalid choice"),
    (["--schedule", "linear"], "invalid choice"),
    (["--warmup", "10", "--epochs", "10"], "--warmup must be in [0, --epochs=10), got 10"),
    (["--gamma", "0"], "--gamma must be in (0, 1], got 0.0"),
    (["--milestones", "0.75", "0.5"], "--milestones must be increasing fractions"),
    (["--milestones", "1.5"], "--milestones must be increasing fractions"),
    (["--ss-scale", "big"], "--ss-scale must be norm, xavier, unit or a number > 0, got 'big'"),
    (["--feedback-scale", "0"], "--feedback-scale must be > 0, got 0.0"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0, got -1.0"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
])
def test_bad_options(example, argv, match, capsys):
    with pytest.raises(SystemExit):
        example.parse_args(argv)
    assert match in capsys.readouterr().err


def test_rule_table_is_one_line_per_rule(example):
    """Adding a rule is one RuleSpec in RULES: the CLI's choices and defaults follow it."""
    spec = example.RuleSpec("another", lambda o, rng: example._rules().Backprop(), lr=0.02)
    example.RULES["another"] = spec
    try:
        args = example.parse_args(["--rules", "another"])
        assert args.rules == ["another"]
    finally:
        del example.RULES["another"]


def test_per_rule_options_and_schedules(example):
    """A rule's own defaults apply unless the command line gives a value for every rule; the
    schedule objects follow the options."""
    from bionp.schedules import CosineSchedule, MultiStepSchedule

    args = example.parse_args([])
    assert args.schedule is None and args.batch_size is None
    dfa = example.rule_options(args, "dfa")
    assert (dfa["init"], dfa["batch_size"], dfa["activation"], dfa["fc_activation"]) == (
        "xavier_uniform", 64, "tanh", "tanh")
    assert args.dfa_at == "next_input" and args.dfa_maps == "full"
    assert example.rule_options(args, "backprop") == example.PER_RULE
    assert example.rule_options(args, "wp")["schedule"] == "constant"
    forced = example.parse_args(["--batch-size", "32", "--init", "xavier_normal",
                                 "--schedule", "multistep"])
    for name in example.RULES:
        opts = example.rule_options(forced, name)
        assert (opts["batch_size"], opts["init"], opts["schedule"]) == (
            32, "xavier_normal", "multistep")
    cfg = {"lr": 0.1, "epochs": 20, "warmup": 2, "schedule_per": "step", "milestones": [0.5, 0.75],
           "gamma": 0.5, "schedule": "cosine"}
    assert example.make_schedule(cfg).state_dict() == CosineSchedule(
        0.1, 20, warmup=2, per_step=True).state_dict()
    ms = example.make_schedule({**cfg, "schedule": "multistep", "schedule_per": "epoch"})
    assert isinstance(ms, MultiStepSchedule) and ms.milestones == [10, 15] and ms.gamma == 0.5
    assert example.make_schedule({**cfg, "schedule": "constant"}) is None


def test_schedule_reaches_the_trainer(example, tmp_path):
    """Multistep with one milestone at half of two epochs: the second epoch runs at lr x gamma,
    so one task from one seed differs from the constant-rate one only after epoch 1; the
    summary records the options and the best epoch."""
    def task(*extra):
        defaults, configs = example.task_configs(example.parse_args(
            TINY + ["--rules", "backprop", "--epochs", "2", *extra]))
        return example.train({**defaults, **configs[0]}, 11)

    const = task("--schedule", "constant")
    step = task("--schedule", "multistep", "--milestones", "0.5", "--gamma", "0.01")
    assert const["test_loss"][0] == step["test_loss"][0]  # epoch 1: the same rate
    assert const["test_loss"][1] != step["test_loss"][1]
    record = {"config": {"rule": "backprop", "lr": 0.01, **example.rule_options(
        example.parse_args(["--schedule", "multistep"]), "backprop")}, "metrics": step, "seed": 11}
    run = example.summarize([record], ["backprop"])["backprop"]
    assert run["config"]["schedule"] == "multistep"
    assert run["best_test_error"] == pytest.approx(100 - max(step["test_accuracy"]))
    assert run["best_epoch"] == [int(np.argmax(step["test_accuracy"])) + 1]


def test_constrain_weights_keeps_every_weight_norm(example):
    """``--constrain-weights on``: after each update every W has its initial Frobenius norm."""
    import bionp as bnp
    from bionp import nn

    net = nn.models.lenet(rng=0)
    before = [float(np.linalg.norm(bnp.asnumpy(layer.W))) for layer in net.layers
              if "W" in layer.params()]
    keep = example.norm_keeper(net)
    for layer in net.layers:
        if "W" in layer.params():
            layer.W *= layer.W.dtype.type(3.0)
            layer.W += layer.W.dtype.type(0.01)
    keep(None)
    after = [float(np.linalg.norm(bnp.asnumpy(layer.W))) for layer in net.layers
             if "W" in layer.params()]
    np.testing.assert_allclose(after, before, rtol=1e-5)
    assert len(before) == 5
    defaults, configs = example.task_configs(example.parse_args(
        TINY + ["--rules", "fa", "--epochs", "1", "--constrain-weights", "on"]))
    assert configs[0]["constrain_weights"] == "on"
    assert example.rule_options(example.parse_args([]), "backprop")["constrain_weights"] == "off"
    out = example.train({**defaults, **configs[0]}, 3)
    assert len(out["test_accuracy"]) == 1 and np.isfinite(out["test_loss"][0])
    free = example.train({**defaults, **configs[0], "constrain_weights": "off"}, 3)
    assert free["test_loss"][0] != out["test_loss"][0]  # the constraint reached the trainer


def test_activations_and_dfa_options_reach_the_model_and_rule(example, monkeypatch):
    """DFA's own LeNet activations (tanh) and its signal placement reach what a task builds;
    ``--activation relu`` on the command line overrides them for every rule."""
    from types import SimpleNamespace

    from bionp import nn

    seen = []
    lenet = nn.models.lenet
    monkeypatch.setattr(nn.models, "lenet", lambda **kw: seen.append(kw) or lenet(**kw))
    for extra, act in (([], "tanh"), (["--activation", "relu", "--dfa-at", "output"], "relu")):
        defaults, configs = example.task_configs(example.parse_args(
            TINY + ["--rules", "dfa", "--epochs", "1", *extra]))
        config = {**defaults, **configs[0]}
        example.train(config, 3)
        assert (seen[-1]["activation"], seen[-1]["fc_activation"]) == (act, "tanh")
        rule = example.RULES["dfa"].make(SimpleNamespace(**config), 0)
        assert rule.at == ("next_input" if not extra else "output")
