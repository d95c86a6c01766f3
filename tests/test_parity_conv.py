"""Parity scenarios of the rules on conv nets (bionp/parity/conv.py): discovered, and NumPy
and the strict stand-in give identical numbers."""

import pytest

from bionp import parity

RULES = ("backprop", "feedback_alignment", "direct_feedback_alignment", "kolen_pollack",
         "kolen_pollack_mirror", "weight_perturbation", "node_perturbation")


def test_conv_scenarios_are_discovered():
    names = set(parity.registered_checks())
    assert {f"conv.{r}" for r in RULES} <= names
    assert {f"conv.batchnorm.{r}" for r in RULES[:5]} <= names
    assert not {"conv.batchnorm.weight_perturbation", "conv.batchnorm.node_perturbation"} & names


@pytest.mark.parametrize("name", ["conv.feedback_alignment", "conv.node_perturbation",
                                  "conv.batchnorm.kolen_pollack_mirror",
                                  "conv.batchnorm.direct_feedback_alignment"])
def test_numpy_and_strict_identical(name):
    rows = parity.run_checks([name], backends=["strict"], dtypes=("float32",))
    arrays = {r["array"] for r in rows}
    assert all(r["passed"] and r["max_rel_diff"] == 0.0 for r in rows)
    assert {"L0.W", "L0.b"} <= arrays
    if "batchnorm" in name:
        assert {"L1.gamma", "L1.beta", "L1.running_mean", "L1.running_var"} <= arrays
    if name.endswith(("feedback_alignment", "pollack_mirror")) and "direct" not in name:
        assert any(a.startswith("B") for a in arrays)
    if "direct" in name:
        assert "D0" in arrays


def test_training_moved_the_weights():
    """The scenario trains: 100 updates change every weight array."""
    import numpy as np

    from bionp.parity.conv import small_convnet, train_small_convnet
    from bionp.rules import FeedbackAlignment

    before = small_convnet(np.float64)
    after = train_small_convnet(lambda: FeedbackAlignment(rng=2), np.float64)
    assert not np.allclose(after["L0.W"], before.layers[0].W)
    assert not np.allclose(after["L3.W"], before.layers[3].W)
