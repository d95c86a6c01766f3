"""Parity scenarios of the rest of the feedback-alignment family (sign symmetry, weight
mirrors): each trains the 6-8-5-3 sigmoid MLP of :mod:`bionp.parity.rules` for 100 SGD
(momentum) updates from fixed seeds (:func:`bionp.parity.rules.train_small_mlp`)."""

from __future__ import annotations

from bionp.parity import register_parity
from bionp.parity.rules import train_small_mlp
from bionp.rules import SignSymmetry, WeightMirror

_RTOL = {"float32": 1e-5, "float64": 1e-12}


@register_parity("feedback_family.usf", rtol=_RTOL)
def parity_usf(dtype):
    """Uniform sign-concordant feedback (B = sign(W) scaled to W's norm): 100 SGD updates."""
    return train_small_mlp(lambda: SignSymmetry("usf"), dtype)


@register_parity("feedback_family.brsf", rtol=_RTOL)
def parity_brsf(dtype):
    """Sign-concordant feedback, magnitudes redrawn every update: 100 SGD updates."""
    return train_small_mlp(lambda: SignSymmetry("brsf", rng=2), dtype)


@register_parity("feedback_family.frsf", rtol=_RTOL)
def parity_frsf(dtype):
    """Sign-concordant feedback, fixed random magnitudes (xavier scale): 100 SGD updates."""
    return train_small_mlp(lambda: SignSymmetry("frsf", scale="xavier", rng=2), dtype)


@register_parity("feedback_family.weight_mirror", rtol=_RTOL)
def parity_weight_mirror(dtype):
    """Weight mirrors: 20 warm-up mirror steps, then 2 after each of 100 SGD updates; W and B
    (Gaussian noise, every layer the same draws and decay: the settings first recorded)."""
    return train_small_mlp(lambda: WeightMirror(mirror_steps=2, mirror_batch_size=16,
                                                warmup_steps=20, decay=0.02, rng=2,
                                                noise_dist="normal", balance=1,
                                                mirror_every=1), dtype)
