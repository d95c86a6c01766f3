"""Parity scenario of the counter-based generator (:mod:`bionp.random`)."""

from __future__ import annotations

from bionp.parity import register_parity
from bionp.random import Generator


@register_parity("random.generator", rtol={"float32": 4e-7, "float64": 1e-15})
def parity_generator(dtype):
    """bionp.random.Generator: raw bits, uniforms, normals, integers, permutation."""
    rng = Generator(20261122)
    return {
        "raw": rng.random_raw(1000),
        "uniform": rng.uniform(-1, 2, size=(100, 7), dtype=dtype),
        "normal": rng.normal(0.5, 2.0, size=(333,), dtype=dtype),
        "integers": rng.integers(-5, 17, size=1000),
        "permutation": rng.permutation(257),
        "choice": rng.choice(1000, size=100, replace=False),
    }
