"""BioConfig, convert, and the Trainer: defaults, round trips, every rule, checkpoints."""

import json

import numpy as np
import pytest

import bionp as bnp
from bionp import nn, optim, plasticity as bio, rules
from bionp.testing import assert_equal
from bionp.train import Trainer

SEED_DEFAULTS = {
    "weight_splitting_activation_function": "identity", "fuzzy_learning_rate_factor_nu": 0.16,
    "dampening_factor": 0.6, "crystal_thresh": 4.5e-5, "rejuvenation_parameter_dre": 8.0,
    "weight_splitting_Gamma": 0, "apply_dales_principle": False, "base_lr": 0.1,
    "stability_factor": 2.0, "lr_variability": 0.2,
}


def test_defaults_are_the_seeds():
    cfg = bio.BioConfig()
    for k, v in SEED_DEFAULTS.items():
        assert getattr(cfg, k) == v, k
    assert cfg.transforms == bio.DEFAULT_TRANSFORMS
    assert bio.BioConverter().get_config() == cfg


@pytest.mark.parametrize("cfg", [
    bio.BioConfig(),
    bio.BioConfig(fuzzy_learning_rate_factor_nu=0.3, dampening_factor=0.25, crystal_thresh=1e-3,
                  rejuvenation_parameter_dre=3.5, weight_splitting_Gamma=4,
                  weight_splitting_activation_function="relu", apply_dales_principle=True,
                  base_lr=0.05, stability_factor=0.5, lr_variability=0.0,
                  transforms=["l1_reg", "scale_grad"], crystallize_every=7, rejuvenate_every=11,
                  lr_relative=False, lr_redraw_every=1, scale_grad_strength=0.5, l1_strength=0.1,
                  keys=["W", "b"], weight_splitting_layers=[0, 2]),
])
def test_config_round_trip_exact(cfg):
    d = cfg.to_dict()
    assert bio.BioConfig.from_dict(d) == cfg
    assert bio.BioConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert bio.BioConfig.from_dict(cfg.get_config()).to_dict() == d
    assert bio.BioConverter.from_dict(d).get_config() == cfg


def test_from_dict_unknown_key():
    with pytest.raises(ValueError, match=r"unknown BioConfig key\(s\) \['fuzzy_nu'\]"):
        bio.BioConfig.from_dict({"fuzzy_nu": 0.2})
    with pytest.raises(ValueError, match="unknown BioConfig key"):
        bio.BioConverter(crystal_threshold=1e-4)
    with pytest.raises(TypeError, match="needs a dict"):
        bio.BioConfig.from_dict([("base_lr", 0.1)])


@pytest.mark.parametrize("kw, match", [
    ({"fuzzy_learning_rate_factor_nu": 1.0}, r"\[0, 1\)"),
    ({"fuzzy_learning_rate_factor_nu": -0.1}, r"\[0, 1\)"),
    ({"dampening_factor": 1.2}, "dampening"),
    ({"crystal_thresh": -4.5e-5}, "crystal_thresh"),
    ({"rejuvenation_parameter_dre": 0.0}, "rejuvenation_parameter_dre"),
    ({"weight_splitting_Gamma": -1}, "weight_splitting_Gamma"),
    ({"weight_splitting_Gamma": 1.5}, "weight_splitting_Gamma"),
    ({"base_lr": -0.1}, "base_lr"),
    ({"stability_factor": -2.0}, "stability_factor"),
    ({"lr_variability": -0.2}, "lr_variability"),
    ({"apply_dales_principle": "yes"}, "apply_dales_principle"),
    ({"transforms": ["fuzzy"]}, r"unknown transform\(s\) \['fuzzy'\]"),
    ({"crystallize_every": 0}, "crystallize_every"),
    ({"weight_splitting_activation_function": "swishy"}, "swishy"),
    ({"l1_strength": -1.0}, "l1_strength"),
])
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        bio.BioConfig(**kw)


def test_gamma_must_divide_the_outputs():
    net = nn.MLP([6, 10, 3], rng=0)
    with pytest.raises(ValueError, match="does not divide the layer's 10 outputs"):
        bio.convert(net, weight_splitting_Gamma=3)


def test_convert_attaches_a_chain_in_the_documented_order(xp):
    net = nn.MLP([6, 8, 3], rng=0)
    bio.convert(net, bio.BioConfig(transforms=list(reversed(bio.TRANSFORMS)), apply_dales_principle=True),
                rng=1)
    names = [t.name for t in net.plasticity]
    assert names == list(bio.TRANSFORMS) + ["enforce_dales_principle"]
    assert all(t.initialized for t in net.plasticity)
    assert net.plasticity.find("enforce_dales_principle").violations(net) == 0
    with pytest.raises(ValueError, match="already has bio transformations"):
        bio.convert(net)
    with pytest.raises(TypeError, match="BioConfig"):
        bio.convert(nn.MLP([6, 8, 3], rng=0), config=3)


def _problem(n=100, d=12, k=3, seed=0):
    g = bnp.random.Generator(seed)
    x = g.normal(0, 1, (n, d), dtype=np.float32)
    y = bnp.asarray((bnp.asnumpy(x[:, :k]).argmax(1)).astype(np.int64))
    return x, y


RULES = {
    "backprop": lambda: rules.Backprop(),
    "feedback_alignment": lambda: rules.FeedbackAlignment(rng=3),
    "direct_feedback_alignment": lambda: rules.DirectFeedbackAlignment(rng=3),
    "kolen_pollack": lambda: rules.KolenPollack(weight_decay=0.01, rng=3),
    "weight_perturbation": lambda: rules.WeightPerturbation(sigma=1e-2, rng=3),
    "node_perturbation": lambda: rules.NodePerturbation(sigma=1e-2, rng=3),
}


@pytest.mark.parametrize("rule_name", list(RULES))
def test_dale_signs_unchanged_after_1000_steps_of_every_rule(rule_name):
    x, y = _problem()
    lr = {"weight_perturbation": 0.02, "node_perturbation": 0.005}.get(rule_name, 0.05)

    net = nn.MLP([12, 16, 8, 3], activation="relu", init="he_normal", rng=0)
    bio.convert(net, transforms=(), apply_dales_principle=True, rng=1)
    w0 = [bnp.asnumpy(layer.W).copy() for layer in net.layers]
    tr = Trainer(net, RULES[rule_name](), optim.SGD(net, lr=lr, momentum=0.9), nn.CrossEntropyLoss(),
                 batch_size=10, rng=0, progress=False)
    h = tr.fit(x, y, epochs=100)                          # 10 steps per epoch: 1,000 steps
    assert h.stopped is None and len(h.loss) == 1000
    op = net.plasticity.find("enforce_dales_principle")
    for l, layer in enumerate(net.layers):
        s = bnp.asnumpy(op.signs(l))
        assert np.all(np.sign(w0[l]) * s[None, :] >= 0)       # the initialisation obeyed them
        assert np.all(bnp.asnumpy(layer.W) * s[None, :] >= 0)  # and 1,000 steps later too
        assert not np.array_equal(bnp.asnumpy(layer.W), w0[l])  # it trained
    assert op.violations(net) == 0


def test_dale_without_enforcement_breaks_signs():
    """The enforcement is what keeps the signs: with the Dalian init alone they flip."""
    x, y = _problem()
    net = nn.MLP([12, 16, 8, 3], activation="relu", init="he_normal", rng=0)
    op = bio.dalian_init(net, rng=1)
    tr = Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.05, momentum=0.9), nn.CrossEntropyLoss(),
                 batch_size=10, rng=0, progress=False)
    tr.fit(x, y, epochs=20)
    assert op.violations(net) > 0


def test_trainer_applies_attached_chain_and_resumes_bit_identically(tmp_path, cpu_xp):
    x, y = _problem(n=120)
    cfg = bio.BioConfig(transforms=bio.TRANSFORMS, apply_dales_principle=True, crystallize_every=3,
                        rejuvenate_every=5, lr_redraw_every=2, crystal_thresh=0.05)

    def make(path):
        net = nn.MLP([12, 16, 3], activation="tanh", rng=0)
        bio.convert(net, cfg, rng=4)
        return net, Trainer(net, rules.FeedbackAlignment(rng=2), optim.SGD(net, lr=0.05, momentum=0.9),
                            nn.CrossEntropyLoss(), batch_size=20, rng=0, progress=False, checkpoint=path)

    net_a, tr_a = make(tmp_path / "a.npz")
    assert tr_a.transforms is net_a.plasticity
    tr_a.fit(x, y, epochs=4)
    net_b, tr_b = make(tmp_path / "b.npz")
    tr_b.fit(x, y, epochs=2)
    net_c, tr_c = make(tmp_path / "b.npz")                  # a new process: resume from the checkpoint
    tr_c.fit(x, y, until_epoch=4, resume=True)
    for la, lc in zip(net_a.layers, net_c.layers):
        assert_equal(la.W, lc.W)
        assert_equal(la.b, lc.b)
    for ta, tc in zip(net_a.plasticity, net_c.plasticity):
        assert ta.step == tc.step == 24
        for name, per in (ta.state or {}).items():
            for key, arr in per.items():
                assert_equal(arr, tc.state[name][key])
        assert ta.rng.get_state() == tc.rng.get_state()
    # and the chain did act: fuzzy factors differ from 1, some weights crystallised
    assert net_a.plasticity.find("crystallize").crystallized_fraction() > 0


def test_trainer_with_transforms_differs_from_without():
    x, y = _problem(n=60)
    outs = []
    for attach in (False, True):
        net = nn.MLP([12, 8, 3], rng=0)
        if attach:
            bio.convert(net, transforms=("fuzzy_learning_rates",), rng=1)
        Trainer(net, rules.Backprop(), optim.SGD(net, lr=0.1), nn.CrossEntropyLoss(), batch_size=20,
                rng=0, progress=False).fit(x, y, epochs=2)
        outs.append(bnp.asnumpy(net.layers[0].W))
    assert not np.array_equal(outs[0], outs[1])


def test_parity_check_registered_and_exact_on_strict():
    from bionp.parity import run_checks

    rows = run_checks(names=["plasticity"], backends=["strict"], dtypes=("float32",))
    assert rows and all(r["passed"] for r in rows), [r for r in rows if not r["passed"]]
    assert all(r["max_rel_diff"] == 0.0 for r in rows)
