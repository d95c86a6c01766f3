"""First-use journeys (issue 26): what a researcher writes in the first hour, with the outcome
asserted.  Each journey failed (or misled) on the main branch before the issue was fixed.

Kept fast (well under 15 s together): tiny networks and the bundled data subset.
"""

import json
import os
import pydoc
import subprocess
import sys

import numpy as np
import pytest

import bionp as bnp
from bionp import metrics, nn, rules
from bionp import plasticity as bio

from _examples import ROOT, load_example


def _small_data(n=300):
    x, y = bnp.data.load("fashion-mnist-small", split="train")
    return x[:n], y[:n]


# -- comparing rules with backprop ---------------------------------------------------------------

def test_kolen_pollack_output_layer_is_exact_at_initialisation():
    """compare_to_backprop(KolenPollack(), ...) read 26.9 deg at the output layer because it
    included KP's weight decay; the error-driven update there is backprop's exactly."""
    x, y = _small_data()
    net = nn.MLP([784, 64, 10], activation="relu", output_activation="identity",
                 init="he_normal", rng=0)
    loss = nn.CrossEntropyLoss()
    for kp in (rules.KolenPollack(rng=1), rules.KolenPollack(weight_decay=0.1, rng=1)):
        angles = metrics.angle_to_backprop(kp, net, x, y, loss)
        assert angles[-1] < 1e-3, angles
        # the whole update, decay included, on request
        with_decay = metrics.angle_to_backprop(kp, net, x, y, loss, include_regularization=True)
        assert with_decay[-1] > 0.1
        assert with_decay[0] == pytest.approx(angles[0], abs=1e-9)  # layer 0 has no decay
    # the regularisation is exposed separately: gradients = error_gradients + regularization
    kp = rules.KolenPollack(weight_decay=0.1, rng=1)
    full = kp.gradients(net, x, y, loss)
    err = kp.error_gradients(net, x, y, loss)
    reg = kp.regularization(net)
    assert reg[0] is None
    np.testing.assert_allclose(full[1]["W"], err[1]["W"] + reg[1]["W"], rtol=1e-6, atol=1e-9)


def test_kolen_pollack_defaults_are_the_recommended_configuration():
    kp = rules.KolenPollack()
    assert (kp.weight_decay, kp.feedback_optimizer) == (3e-3, "mirror")
    tut = rules.KolenPollack.tutorial(batch_size=200)  # the tutorial's, one call away
    assert (tut.weight_decay, tut.feedback_optimizer) == (1e-3, "sgd")
    with pytest.raises(ValueError, match="pass feedback_optimizer='sgd'"):
        rules.KolenPollack(feedback_lr=0.1)  # would be ignored by the mirror: refused


def test_compare_rules_records_the_alignment_at_epoch_0(tmp_path):
    ex = load_example("compare_rules")
    runs = ex.main(["--epochs", "1", "--data", "fashion-mnist-small", "--subset", "300",
                    "--hidden", "32", "--align-samples", "100",
                    "--rules", "kolen_pollack", "--batch-size", "100", "--quiet",
                    "--out", str(tmp_path)])
    cos = runs["kolen_pollack"]["cosine_similarity"]
    assert len(cos) == 2  # epoch 0 (before training) and epoch 1
    assert cos[0][-1] == pytest.approx(1.0, abs=1e-6)  # output layer exact at initialisation
    assert runs["kolen_pollack"]["alignment_angle"][0][-1] < 0.1
    doc = json.loads((tmp_path / "results.json").read_text())
    assert len(doc["runs"]["kolen_pollack"]["cosine_similarity"]) == 2


# -- bio transformations ------------------------------------------------------------------------

def test_one_default_for_the_volume_dependent_learning_rate():
    """volume_dependent_lr() used relative=False, BioConfig lr_relative=True: a 10x different
    step for 'the default'.  One default now (the seed's scale)."""
    assert bio.BioConfig().lr_relative is bio.VolumeDependentLR().relative is False
    chain = bio.BioConfig(transforms=("volume_dependent_lr",)).build(rng=1)
    vol = [t for t in chain.transforms if isinstance(t, bio.VolumeDependentLR)]
    assert len(vol) == 1 and vol[0].relative is bio.volume_dependent_lr().relative
    # the factor's size: median about base_lr (0.1) for small weights, not about 1
    w = bnp.random.Generator(0).normal(0, 0.05, (200, 50))
    g = np.ones_like(w)
    tx = bio.volume_dependent_lr(rng=3)
    tx.init([{"W": w}])
    out = tx.update([{"W": w}], [{"W": g}])
    assert 0.07 < float(np.median(out[0]["W"])) < 0.1


def test_help_of_the_volume_module_shows_its_explanation():
    text = pydoc.render_doc(bio.volume, renderer=pydoc.plaintext)
    assert "Volume-dependent learning rates" in text and "module" in text
    w = np.array([1.0, -3.0])
    np.testing.assert_allclose(bio.synapse_volume(w), [0.5, 0.75])
    assert bio.volume.volume is bio.synapse_volume  # the old name, kept
    with pytest.warns(DeprecationWarning, match="synapse_volume"):
        np.testing.assert_allclose(bio.volume(w), [0.5, 0.75])  # the old call still works


def test_dales_principle_named_as_a_transform_points_to_the_flag():
    with pytest.raises(ValueError, match=r"apply_dales_principle=True"):
        bio.BioConfig(transforms=("fuzzy_learning_rates", "dales_principle"))


# -- Hebbian features ---------------------------------------------------------------------------

def test_krotov_hopfield_transform_gives_features_like_the_stack():
    from bionp.hebbian import HebbianStack, KrotovHopfield

    x = bnp.random.Generator(0).uniform(0, 1, (20, 12), dtype="float64")
    kh = KrotovHopfield(8, p=2.0, dtype="float64", rng=0).initialize(12)
    stack = HebbianStack([kh], normalize_features=False, power=3.0)
    np.testing.assert_allclose(kh.transform(x, power=3.0), stack.transform(x), rtol=1e-12)
    W = bnp.asnumpy(kh.weights_)
    np.testing.assert_allclose(kh.currents(x), x @ W.T, rtol=1e-12)  # p = 2: sign(W)|W|^(p-1) = W


# -- sweeps -------------------------------------------------------------------------------------

def test_sweep_file_seed_mismatch_speaks_of_the_files_key(tmp_path):
    from bionp import sweep

    (tmp_path / "tasks.py").write_text("def train(config, seed):\n    return {'acc': 1.0}\n")
    for seed in (0, 1):
        (tmp_path / "s.toml").write_text(
            f'function = "tasks.py:train"\nscheduler = "serial"\nseed = {seed}\n'
            '[grid]\na = [1]\n')
        kwargs = sweep.load_sweep_file(tmp_path / "s.toml")
        if seed == 0:
            sweep.run(**kwargs, verbose=False, progress=False)
        else:
            with pytest.raises(sweep.StoreError, match=r"`seed = \.\.\.` in a sweep file"):
                sweep.run(**kwargs, verbose=False, progress=False)


def test_rule_comparison_says_which_learning_rate_it_chose(tmp_path):
    from bionp import sweep

    def rec(rule, lr, repeat, acc):
        return {"config": {"rule": rule, "lr": lr}, "repeat": repeat, "status": "ok",
                "metrics": {"test_accuracy": [acc]}}

    records = [rec("bp", 0.1, 0, 80.0), rec("bp", 0.1, 1, 82.0), rec("bp", 0.01, 0, 70.0),
               rec("fa", 0.1, 0, 60.0), rec("fa", 0.01, 0, 75.0)]
    fig = sweep.plot_rule_comparison(records, "test_accuracy", tmp_path / "r.png")
    assert {k: r["lr"] for k, r in fig.best_configs.items()} == {"bp": 0.1, "fa": 0.01}
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["bp (lr=0.1)", "fa (lr=0.01)"]
    assert "best lr per rule" in fig.axes[0].get_title()
    assert sweep.best_per_group(records, "test_accuracy")["fa"]["mean"] == 75.0


# -- what the files and figures show -------------------------------------------------------------

def test_results_json_accuracies_read_as_decimals(tmp_path):
    from bionp.experiment import write_results

    acc = 100.0 * float(np.mean(np.arange(1000) < 791))  # the Trainer's formula
    assert repr(acc) == "79.10000000000001"
    write_results(str(tmp_path), {}, {"bp": {"test_accuracy": [acc], "x": np.float32(0.1)}})
    text = (tmp_path / "results.json").read_text()
    assert "79.1" in text and "79.10000000000001" not in text and "0.100000001" not in text


def test_epoch_curves_have_integer_ticks():
    from bionp.plot import plot_curves

    fig = plot_curves({"bp": [70.0, 75.0, 79.0]})
    fig.canvas.draw()
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


def test_draw_weights_default_scale_keeps_small_units_legible():
    from bionp.hebbian.plotting import weight_grid

    W = np.zeros((2, 4))
    W[0, 0], W[1, 0] = 1e-3, 10.0
    assert weight_grid(W, 1, 2, (2, 2)).max() == 1.0
    assert weight_grid(W, 1, 2, (2, 2))[0, 0] == 1.0  # the small unit's own scale


# -- the terminal -------------------------------------------------------------------------------

def test_licence_is_an_spdx_expression():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["license"] == "MIT"
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]


def test_cupy_skips_fold_into_one_summary_line():
    if "cupy" in bnp.available_backends():
        pytest.skip("CuPy available: its tests run")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         "tests/test_optim.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SKIPPED")
             and "CuPy" in ln]
    assert len(lines) == 1, proc.stdout[-2000:]
