"""Parity scenario of the data pipeline (:mod:`bionp.data.batching`)."""

from __future__ import annotations

from bionp.backend import get_xp
from bionp.data.batching import BatchIterator
from bionp.parity import register_parity


@register_parity("data.batch_iterator", rtol={"float32": 0.0, "float64": 0.0})
def parity_batch_iterator(dtype):
    """BatchIterator: same seed, same batches (two shuffled epochs, last batch short)."""
    xp = get_xp()
    x = xp.arange(103 * 5, dtype=dtype).reshape(103, 5)
    y = xp.arange(103) % 7
    it = BatchIterator(x, y, batch_size=16, rng=1234)
    out = {}
    for epoch in range(2):
        batches = list(it)
        out[f"x_epoch{epoch}"] = xp.concatenate([xb for xb, _ in batches])
        out[f"y_epoch{epoch}"] = xp.concatenate([yb for _, yb in batches])
    return out
