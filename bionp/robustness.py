r"""Robustness to test-time weight noise: accuracy as a function of the noise level.

For each noise level :math:`\sigma_k` of a grid and each repeat
:math:`r = 1..R`, every weight matrix :math:`W_l` of the network is replaced by

.. math::

    W_l^{(r,k)} = W_l + \sigma_k\,\varepsilon_l^{(r)} \quad (\text{additive}), \qquad
    W_l^{(r,k)} = W_l \odot (1 + \sigma_k\,\varepsilon_l^{(r)}) \quad
    (\text{multiplicative}), \qquad \varepsilon_l^{(r)} \sim \mathcal N(0, I),

and the accuracy :math:`a_{rk}` of that perturbed network on the whole of
``(x, labels)`` is measured (one perturbed network per repeat: a faulty device
evaluated on the test set).  The curve reports :math:`\bar a_k = \frac1R\sum_r
a_{rk}` and the population standard deviation over repeats.  The draws of
different repeats are independent; within a repeat the same
:math:`\varepsilon^{(r)}` is scaled to every :math:`\sigma_k` (common random
numbers: the curve is smooth in :math:`\sigma` and two networks of the same
shape evaluated with the same ``rng`` see the same noise, a paired
comparison).  At :math:`\sigma = 0` the network is evaluated once, unperturbed:
the result is deterministic and its standard deviation 0.

Biases are not perturbed (as in :mod:`bionp.nn.noisy`).  The network is not
modified: the perturbed weights are passed with ``net.forward_with(x, params)``.
Noisy layers evaluate with their training noise off (their default), so the
only noise is the noise this function reports; a layer configured with
``eval_noise`` adds its own on top.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from bionp.backend import check_same_backend, get_array_module, is_array, to_scalar
from bionp.nn.noisy import check_noise_mode, noisy_weight
from bionp.random import check_rng

__all__ = ["RobustnessCurve", "robustness_curve", "check_sigma_grid", "perturbed_parameters"]


def check_sigma_grid(sigmas) -> np.ndarray:
    """The grid as a 1-D float64 host array of finite values >= 0, else a clear error.

    Parameters
    ----------
    sigmas : sequence of float
    """
    if is_array(sigmas) and not isinstance(sigmas, np.ndarray):
        from bionp.backend import asnumpy

        sigmas = asnumpy(sigmas)
    if isinstance(sigmas, numbers.Real):
        sigmas = [sigmas]
    try:
        grid = np.asarray(sigmas, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"sigmas must be a sequence of noise levels (numbers >= 0), got "
                        f"{sigmas!r}") from None
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"sigmas must be a non-empty 1-D sequence of noise levels, got shape "
                         f"{grid.shape}")
    if not np.all(np.isfinite(grid)):
        raise ValueError(f"sigmas must be finite, got {grid.tolist()}")
    if np.any(grid < 0):
        raise ValueError(f"sigmas must be >= 0 (standard deviations), got negative values "
                         f"{grid[grid < 0].tolist()} in {grid.tolist()}")
    return grid


def _weight_keys(net):
    """Indices of the layers that have a 2-D weight matrix ``W`` to perturb."""
    keys = [l for l, p in enumerate(net.parameters()) if "W" in p and p["W"].ndim == 2]
    if not keys:
        raise ValueError("the network has no weight matrix params()['W'] to perturb")
    return keys


def perturbed_parameters(net, eps, sigma: float, mode: str = "additive", out=None):
    """``net.parameters()`` with each ``W`` replaced by its perturbed copy.

    ``eps`` is a list aligned with the layers (None for layers left alone);
    ``out``, the same, gives buffers for the perturbed weights.

    Parameters
    ----------
    net : Sequential or MLP
    eps : list
        Aligned with the layers: a standard-normal array shaped like the layer's ``W``,
        or ``None`` for a layer left alone.
    sigma : float
    mode : {"additive", "multiplicative"}, default "additive"
    out : list of arrays or None
    """
    params = []
    for l, p in enumerate(net.parameters()):
        if eps[l] is None:
            params.append(p)
            continue
        q = dict(p)
        q["W"] = noisy_weight(p["W"], eps[l], sigma, mode, out=None if out is None else out[l])
        params.append(q)
    return params


@dataclasses.dataclass
class RobustnessCurve:
    """Accuracy (%) versus test-time weight-noise σ.

    Parameters
    ----------
    sigmas : list of float
        The noise levels σ_k, >= 0.
    accuracy : list of lists
        ``accuracy[k][r]``: test accuracy (%) at σ_k in repeat r.
    mode : {"additive", "multiplicative"}
        How the noise perturbed the weights.
    repeats : int
        Noise draws per σ.
    """

    sigmas: list
    accuracy: list
    mode: str
    repeats: int

    @property
    def mean(self) -> list:
        return [float(np.mean(a)) for a in self.accuracy]

    @property
    def std(self) -> list:
        return [float(np.std(a)) for a in self.accuracy]

    def at(self, sigma: float) -> tuple[float, float]:
        """``(mean, std)`` at the grid point equal to ``sigma``."""
        for k, s in enumerate(self.sigmas):
            if math.isclose(s, sigma, rel_tol=1e-12, abs_tol=1e-15):
                return self.mean[k], self.std[k]
        raise KeyError(f"sigma {sigma} is not on the grid {self.sigmas}")

    def to_dict(self) -> dict:
        return {"sigmas": list(self.sigmas), "mean": self.mean, "std": self.std,
                "accuracy": [list(a) for a in self.accuracy], "mode": self.mode,
                "repeats": self.repeats}

    @classmethod
    def from_dict(cls, d: dict) -> "RobustnessCurve":
        return cls(list(d["sigmas"]), [list(a) for a in d["accuracy"]], d["mode"], int(d["repeats"]))


def _accuracy(net, x, labels, params, batch_size, checked):
    """Accuracy in % of ``net`` with ``params`` (one host sync); ``checked``: ``x`` was
    validated by ``net.check_input`` already."""
    xp = get_array_module(x)
    n = x.shape[0]
    skip = {"checked": True} if checked else {}
    correct = 0
    for i in range(0, n, batch_size):
        out = net.forward_with(x[i:i + batch_size], params, **skip)
        correct = correct + xp.count_nonzero(xp.argmax(out, axis=1) == labels[i:i + batch_size])
    return 100.0 * float(to_scalar(correct)) / n


def robustness_curve(net, x, labels, sigmas=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2), repeats: int = 5,
                     rng=None, mode: str = "additive", batch_size: int = 10_000) -> RobustnessCurve:
    """Accuracy of ``net`` on ``(x, labels)`` under test-time weight noise (module docstring).

    Parameters
    ----------
    net : network with ``parameters()`` and ``forward_with(x, params)`` (MLP, Sequential)
    x : (N, in) array; labels : (N,) int array
    sigmas : sequence of float >= 0
    repeats : int >= 1
        Independent noise draws per σ > 0.
    rng : int, Generator or None
        Source of the noise (bionp's generator).
    mode : {"additive", "multiplicative"}
    batch_size : int
        Rows per forward pass.

    Returns
    -------
    RobustnessCurve
    """
    grid = check_sigma_grid(sigmas)
    check_noise_mode(mode)
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not (hasattr(net, "parameters") and hasattr(net, "forward_with")):
        raise TypeError(f"net must have parameters() and forward_with(x, params) (a bionp MLP or "
                        f"Sequential), got {type(net).__name__}")
    checked = hasattr(net, "check_input")
    x = net.check_input(x) if checked else x
    if getattr(labels, "ndim", None) != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have shape ({x.shape[0]},), got "
                         f"{tuple(getattr(labels, 'shape', ()))}")
    check_same_backend(x, labels, names=("x", "labels"))
    rng = check_rng(rng)
    layers = _weight_keys(net)
    clean = None
    acc = [[0.0] * int(repeats) for _ in grid]
    if np.any(grid == 0):
        clean = _accuracy(net, x, labels, net.parameters(), batch_size, checked)
    base = net.parameters()
    xp = get_array_module(base[layers[0]]["W"])
    bufs = [xp.empty_like(p["W"]) if l in layers else None for l, p in enumerate(base)]
    for r in range(int(repeats)):
        eps = [None] * len(base)
        if np.any(grid > 0):
            for l in layers:
                W = base[l]["W"]
                eps[l] = rng.normal(0.0, 1.0, W.shape, dtype=W.dtype, xp=xp)
        for k, s in enumerate(grid):
            if s == 0:
                acc[k][r] = clean
                continue
            params = perturbed_parameters(net, eps, float(s), mode, out=bufs)
            acc[k][r] = _accuracy(net, x, labels, params, batch_size, checked)
    return RobustnessCurve([float(s) for s in grid], acc, mode, int(repeats))
