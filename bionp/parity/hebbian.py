"""Parity scenarios of the Hebbian models (:mod:`bionp.hebbian`)."""

from __future__ import annotations

from bionp.backend import get_xp
from bionp.hebbian.classifier import BioClassifier
from bionp.hebbian.krotov_hopfield import KrotovHopfield
from bionp.parity import register_parity
from bionp.random import Generator


@register_parity("hebbian.krotov_hopfield", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_krotov_hopfield(dtype):
    """200 minibatch updates of KrotovHopfield (p=3, k=3) from a fixed seed."""
    rng = Generator(2019)
    x = rng.uniform(0.0, 1.0, (400, 24), dtype=dtype)
    kh = KrotovHopfield(16, p=3.0, k=3, delta=0.4, lr=0.05, batch_size=20, rng=7, dtype=dtype,
                        progress=False)
    kh.fit(x, epochs=10)
    return {"weights": kh.weights_, "win_counts": kh.win_counts_.astype(dtype)}


@register_parity("hebbian.classifier", rtol={"float32": 1e-5, "float64": 1e-12})
def parity_classifier(dtype):
    """BioClassifier (power loss, Adam): 3 epochs of 12 batches on random-weight features."""
    g = Generator(11)
    xp = get_xp()
    x = g.normal(0, 1, (96, 12), dtype=dtype, xp=xp)
    y = g.integers(0, 3, 96, xp=xp)
    W = g.normal(0, 1, (16, 12), dtype=dtype, xp=xp)
    clf = BioClassifier(W, n_classes=3, power=3.0, beta=0.5, lr=0.01, batch_size=8, epochs=3,
                        rng=2, progress=False).fit(x, y)
    return {"V": clf.readout_, "b": clf.bias_, "scores": clf.predict_scores(x[:10])}
