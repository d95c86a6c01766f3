r"""The supervised readout on top of competing hidden units (Krotov & Hopfield 2019).

The Hebbian weights :math:`W` stay frozen.  Hidden features, a linear readout
:math:`V` (``n_classes × n_hidden``) with bias :math:`b`, and outputs:

.. math::

    h_{n\mu} &= \max\big(\textstyle\sum_i W_{\mu i} x_{ni},\ 0\big)^{n}
        \qquad(\text{then } h_n \leftarrow h_n / \max_\mu h_{n\mu}
        \text{ with } \texttt{feature\_scaling="max"}) \\
    z_{n\alpha} &= \textstyle\sum_\mu V_{\alpha\mu} h_{n\mu} + b_\alpha, \qquad
    c_{n\alpha} = \tanh(\beta\, z_{n\alpha})

:class:`BioClassifier` trains :math:`V, b` with the paper's power loss or
cross-entropy; the losses and their hand-derived gradients are the functional
core in :mod:`bionp.hebbian.readout` (:func:`~bionp.hebbian.readout.readout_gradients`).

Feature scaling: the paper feeds the raw :math:`h` (its inputs and the
converged Hebbian weights have unit norm, which keeps :math:`h` of order one).
Because :math:`x^{4.5}` of unnormalised data easily spans many decades, the
default here divides each sample's features by their maximum over units
(``feature_scaling="max"``); ``feature_scaling=None`` is the paper's literal
readout (choose ``beta`` to match the scale of ``h``), ``"l2"`` scales to unit
Euclidean norm.  ``"standardize"`` standardises every hidden unit over the
training set instead (a per-feature, not per-sample, scaling):

.. math::

    \tilde h_{n\mu} = \frac{h_{n\mu} - m_\mu}{s_\mu}, \qquad
    m_\mu = \frac1N\sum_n h_{n\mu}, \quad
    s_\mu = \Big(\frac1N\sum_n (h_{n\mu} - m_\mu)^2\Big)^{1/2}

with :math:`m, s` from the training inputs of :meth:`BioClassifier.fit`
(:attr:`~BioClassifier.feature_mean_`, :attr:`~BioClassifier.feature_std_`;
a unit that is constant on the training set gets :math:`s_\mu = 1`).  The
units of a trained layer produce features of very different sizes
(:math:`(W_\mu\cdot x)^n` with :math:`n = 4.5` magnifies small differences
of :math:`W_\mu\cdot x`), which a per-sample scaling leaves in place.

Untrained baseline: :func:`random_features_baseline` returns random weights of
the same shape as a trained layer (drawn like the layer's own initialisation,
standard normal), to pass as ``BioClassifier(hebbian=W_random)``.
"""

from __future__ import annotations

import time
from typing import Any

from bionp.backend import get_array_module, is_array, resolve_dtype, to_scalar
from bionp.hebbian.krotov_hopfield import KrotovHopfield, _check_number
from bionp.hebbian.readout import (  # the readout's maths (defined here before; names kept)
    READOUT_LOSSES,
    _check_loss_name,
    _check_m,
    power_loss,
    power_loss_grad,
    readout_forward,
    readout_gradients,
)
from bionp.hebbian.stack import HebbianStack
from bionp.progress import progress_range
from bionp.random import Generator, check_rng
from bionp.validation import check_samples

__all__ = [
    "BioClassifier",
    "power_loss",
    "power_loss_grad",
    "random_features_baseline",
    "readout_forward",
    "readout_gradients",
    "READOUT_LOSSES",
]

_OPTIMIZERS = ("adam", "sgd")
_SCALINGS = (None, "max", "l2", "standardize")
_LR_DECAYS = ("constant", "linear")


def random_features_baseline(like, rng: int | Generator | None = None, dtype: Any = None,
                             match_norms: bool = False):
    r"""Untrained weights of the same shape as ``like``, drawn standard normal.

    ``like`` is a fitted :class:`KrotovHopfield`, or a weight array
    ``(n_hidden, n_in)``.  Pass the result as ``BioClassifier(hebbian=W)`` to
    measure what the readout reaches on random (untrained) features.

    With ``match_norms=True`` (``like`` must then be a :class:`KrotovHopfield`)
    every random unit is rescaled to the learned unit's
    :math:`\sum_i |W_{\mu i}|^p` (row :math:`\mu` of ``like.weights_``, with the
    layer's ``p``), so that a readout without per-sample feature scaling
    (``feature_scaling=None``) sees features of the same size for both.

    Parameters
    ----------
    like : KrotovHopfield or array (n_hidden, n_in)
    rng, dtype, match_norms
        The generator of the draw, its dtype (``None``: the default), the rescaling above.
    """
    if isinstance(like, KrotovHopfield):
        like._require_fitted()
        W = like.weights_
    elif is_array(like):
        W = like
    else:
        raise TypeError(f"like must be a fitted KrotovHopfield or a weight array, "
                        f"got {type(like).__name__}")
    if W.ndim != 2:
        raise ValueError(f"weights must be 2-D (n_hidden, n_in), got shape {tuple(W.shape)}")
    if match_norms and not isinstance(like, KrotovHopfield):
        raise TypeError("match_norms=True needs a fitted KrotovHopfield (for its p and norms)")
    dt = W.dtype if dtype is None else resolve_dtype(dtype)
    xp = get_array_module(W)
    R = check_rng(rng).normal(0.0, 1.0, tuple(W.shape), dtype=dt, xp=xp)
    if match_norms:
        p = like.p
        target = like.unit_norms().astype(dt)
        own = xp.sum(xp.abs(R) ** dt.type(p), axis=1)
        R *= ((target / own) ** dt.type(1.0 / p))[:, None]
    return R


class BioClassifier:
    r"""Frozen Hebbian features + a readout trained by gradient descent.

    .. math::

        c = \tanh\big(\beta\,(h V^\top + b)\big), \qquad h = \max(xW^\top, 0)^n

    trained with the paper's power loss :math:`\frac1N\sum|c - t|^m` (targets
    :math:`\pm1`) or with cross-entropy on :math:`\beta(hV^\top + b)`
    (see :mod:`bionp.hebbian.classifier`).

    Parameters
    ----------
    hebbian : KrotovHopfield, HebbianStack or array (n_hidden, n_in)
        The feature layer.  It must already be trained (``fit``): the classifier
        never changes it.  A stack feeds ``x`` through all but its last layer
        (:meth:`HebbianStack.transform`) and takes the last layer's
        :math:`\max(hW^\top, 0)^n`.  An array is used as fixed weights, e.g. the
        untrained baseline from :func:`random_features_baseline`.
    n_classes : int >= 2
    power : float > 0
        Exponent :math:`n` of the hidden features (paper: 4.5).
    m : float >= 1
        Exponent of the power loss (paper: 6).
    beta : float > 0
        Slope of the readout.
    loss : {"power", "cross_entropy"}
    optimizer : {"adam", "sgd"}
        One of bionp's optimisers (:class:`bionp.optim.Adam`, :class:`bionp.optim.SGD`).
    lr : float > 0
    lr_decay : {"constant", "linear"}
        Learning rate of epoch ``e`` (0-based): ``lr`` throughout, or
        ``lr * (1 - e / epochs)`` (decaying linearly towards 0, as the Hebbian layer's).
    batch_size : int >= 1
    epochs : int >= 1
    feature_scaling : {"max", "l2", "standardize", None}
        Per-sample scaling of :math:`h` (``"max"``, ``"l2"``), per-unit
        standardisation with the training set's mean and std (``"standardize"``),
        or none (see the module docstring).
    init_std : float >= 0
        Standard deviation of the normal initial :math:`V` (the bias starts at 0).
    rng : int, Generator or None
        Source of the initial readout and of the batch order.
    precompute : bool
        Compute the features of the whole training set once per :meth:`fit`
        (``N × n_hidden`` values of the dtype, built in chunks of 10,000 samples)
        instead of once per batch and epoch.  The numbers are the same up to the
        matmul's blocking; with frozen Hebbian weights this saves one
        ``N × n_in × n_hidden`` matmul per epoch.  Set False when that matrix
        does not fit in memory.
    progress : bool or None
        tqdm bar over epochs; None shows it only on a terminal (and not when the
        environment sets ``BIONP_PROGRESS=0``).

    Attributes
    ----------
    readout_ : array (n_classes, n_hidden)
        :math:`V`.
    bias_ : array (n_classes,)
    feature_mean_, feature_std_ : arrays (n_hidden,) or None
        The training features' per-unit mean and std (``feature_scaling="standardize"``
        only; set by :meth:`fit`).
    history_ : list of dict
        Per epoch: ``epoch``, ``lr``, ``loss`` (mean over batches), ``train_accuracy`` (%, on the
        batches as they were seen), ``seconds``, and ``test_accuracy`` (%) when
        :meth:`fit` was given ``x_test, y_test``.
    """

    def __init__(self, hebbian, n_classes: int = 10, power: float = 4.5, m: float = 6.0,
                 beta: float = 0.1, loss: str = "power", optimizer: str = "adam",
                 lr: float = 1e-3, batch_size: int = 100, epochs: int = 10,
                 lr_decay: str = "constant",
                 feature_scaling: str | None = "max", init_std: float = 0.01,
                 rng: int | Generator | None = None, precompute: bool = False,
                 progress: bool | None = None):
        if not isinstance(hebbian, (KrotovHopfield, HebbianStack)) and not is_array(hebbian):
            raise TypeError(f"hebbian must be a trained KrotovHopfield, a HebbianStack or a "
                            f"weight array (n_hidden, n_in); got {type(hebbian).__name__}")
        if is_array(hebbian) and hebbian.ndim != 2:
            raise ValueError(f"hebbian weights must be 2-D (n_hidden, n_in), got shape "
                             f"{tuple(hebbian.shape)}")
        _check_number("n_classes", n_classes, low=2, integer=True)
        _check_number("power", power, low=0, low_open=True)
        _check_m(m)
        _check_number("beta", beta, low=0, low_open=True)
        _check_loss_name(loss)
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; use one of {', '.join(_OPTIMIZERS)}")
        _check_number("lr", lr, low=0, low_open=True)
        if lr_decay not in _LR_DECAYS:
            raise ValueError(f"unknown lr_decay {lr_decay!r}; use one of {', '.join(_LR_DECAYS)}")
        _check_number("batch_size", batch_size, low=1, integer=True)
        _check_number("epochs", epochs, low=1, integer=True)
        if feature_scaling not in _SCALINGS:
            raise ValueError(f"feature_scaling must be 'max', 'l2', 'standardize' or None, "
                             f"got {feature_scaling!r}")
        _check_number("init_std", init_std, low=0)
        if not isinstance(precompute, bool):
            raise TypeError(f"precompute must be True or False, got {precompute!r}")
        self.hebbian = hebbian
        self.n_classes = int(n_classes)
        self.power = float(power)
        self.m = float(m)
        self.beta = float(beta)
        self.loss = loss
        self.optimizer = optimizer
        self.lr = float(lr)
        self.lr_decay = lr_decay
        self.batch_size = int(batch_size)
        self.epochs = int(epochs)
        self.feature_scaling = feature_scaling
        self.init_std = float(init_std)
        if rng is not None and not isinstance(rng, Generator):
            check_rng(rng)  # a bad seed is refused here, not at fit()
        self.rng = rng
        self.precompute = precompute
        self.progress = progress
        self.readout_ = None
        self.bias_ = None
        self.feature_mean_ = None
        self.feature_std_ = None
        self.history_ = []

    def get_params(self) -> dict:
        """Constructor arguments; ``BioClassifier(**clf.get_params())`` builds an unfitted copy."""
        return {
            "hebbian": self.hebbian, "n_classes": self.n_classes, "power": self.power,
            "m": self.m, "beta": self.beta, "loss": self.loss, "optimizer": self.optimizer,
            "lr": self.lr, "lr_decay": self.lr_decay, "batch_size": self.batch_size,
            "epochs": self.epochs,
            "feature_scaling": self.feature_scaling, "init_std": self.init_std, "rng": self.rng,
            "precompute": self.precompute, "progress": self.progress,
        }

    def __repr__(self) -> str:
        return (f"BioClassifier(n_classes={self.n_classes}, power={self.power}, m={self.m}, "
                f"beta={self.beta}, loss={self.loss!r}, optimizer={self.optimizer!r}, "
                f"lr={self.lr})")

    # -- features ------------------------------------------------------------------
    def _last_weights(self):
        h = self.hebbian
        if is_array(h):
            return h
        layer = h if isinstance(h, KrotovHopfield) else h.layers_[-1]
        if layer.weights_ is None:
            raise RuntimeError("the Hebbian layer is not trained yet: call its fit(x) first "
                               "(BioClassifier keeps the Hebbian weights frozen)")
        return layer.weights_

    def _check_x(self, x):
        check_samples(x, "x")
        W = self._last_weights()
        if isinstance(self.hebbian, HebbianStack):
            n_in = self.hebbian.layers_[0].n_in_
        else:
            n_in = W.shape[1]
        if x.shape[1] != n_in:
            raise ValueError(f"x has {x.shape[1]} features but the Hebbian layer expects "
                             f"n_in = {n_in}")
        return W

    def features(self, x):
        r"""Hidden features :math:`h` of ``x`` (scaled per ``feature_scaling``), (N, n_hidden).

        With ``feature_scaling="standardize"`` this needs the statistics of :meth:`fit`.
        """
        return self._scale(self._raw_features(x))

    def _raw_features(self, x):
        r"""Unscaled :math:`\max(xW^\top, 0)^n`, (N, n_hidden)."""
        W = self._check_x(x)
        h = self.hebbian
        if isinstance(h, KrotovHopfield):
            f = h.activations(x, power=self.power)
        elif isinstance(h, HebbianStack):
            inner = h.transform(x, n_layers=len(h) - 1) if len(h) > 1 else x
            f = h.layers_[-1].activations(inner, power=self.power)
        else:
            xp = get_array_module(x, W)
            if not to_scalar(xp.all(xp.isfinite(x))):
                raise ValueError("x contains NaN or Inf; clean or impute the data first")
            f = x.astype(W.dtype, copy=False) @ W.T
            xp.maximum(f, 0, out=f)
            if self.power != 1:
                xp.power(f, f.dtype.type(self.power), out=f)
        return f

    def _scale(self, f):
        if self.feature_scaling is None:
            return f
        xp = get_array_module(f)
        if self.feature_scaling == "standardize":
            if self.feature_mean_ is None:
                raise RuntimeError("feature_scaling='standardize' uses the mean and std of the "
                                   "training features: call fit(x, y) first")
            f -= self.feature_mean_
            f /= self.feature_std_
            return f
        if self.feature_scaling == "max":
            s = xp.max(f, axis=1, keepdims=True)
        else:
            s = xp.sqrt(xp.sum(f * f, axis=1, keepdims=True))
        xp.maximum(s, xp.finfo(f.dtype).tiny, out=s)
        f /= s
        return f

    # -- training ------------------------------------------------------------------
    def _check_labels(self, y, n):
        if not is_array(y) or y.ndim != 1 or y.dtype.kind not in "iu":
            shape = tuple(y.shape) if hasattr(y, "shape") else type(y).__name__
            raise ValueError(f"y must be a 1-D integer array of class labels, got {shape}"
                             f"{' of dtype ' + str(y.dtype) if hasattr(y, 'dtype') else ''}")
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} labels but x has {n} samples")
        xp = get_array_module(y)
        lo, hi = to_scalar(xp.min(y)), to_scalar(xp.max(y))
        if lo < 0 or hi >= self.n_classes:
            raise ValueError(f"class labels must lie in [0, {self.n_classes}) for n_classes="
                             f"{self.n_classes}; got labels from {lo} to {hi}")

    def _make_optimizer(self, params):
        from bionp.optim import SGD, Adam  # noqa: PLC0415

        return Adam(params, lr=self.lr) if self.optimizer == "adam" else SGD(params, lr=self.lr)

    def features_in_chunks(self, x, chunk: int = 10_000, scaled: bool = True):
        """:meth:`features` of all of ``x``, computed ``chunk`` samples at a time.

        ``scaled=False`` returns the unscaled :math:`\\max(xW^\\top, 0)^n`.
        """
        _check_number("chunk", chunk, low=1, integer=True)
        W = self._check_x(x)
        xp = get_array_module(W)
        out = xp.empty((x.shape[0], W.shape[0]), dtype=W.dtype)
        compute = self.features if scaled else self._raw_features
        for start in range(0, x.shape[0], chunk):
            out[start:start + chunk] = compute(x[start:start + chunk])
        return out

    def _feature_statistics(self, x, raw=None, chunk: int = 10_000):
        r"""Per-unit mean and std of the unscaled features of ``x`` (float64 sums).

        ``raw`` is the precomputed unscaled feature matrix, if there is one; otherwise the
        features are computed ``chunk`` samples at a time, twice (mean, then the squared
        deviations from it).
        """
        W = self._last_weights()
        xp = get_array_module(W)
        n = x.shape[0]

        def blocks():
            for start in range(0, n, chunk):
                if raw is not None:
                    yield raw[start:start + chunk]
                else:
                    yield self._raw_features(x[start:start + chunk])

        total = xp.zeros(W.shape[0], dtype=xp.float64)
        for f in blocks():
            total += xp.sum(f, axis=0, dtype=xp.float64)
        mean = total / n
        total[...] = 0
        for f in blocks():
            d = f.astype(xp.float64) - mean
            total += xp.sum(d * d, axis=0)
        std = xp.sqrt(total / n)
        std[std == 0] = 1.0
        return mean.astype(W.dtype), std.astype(W.dtype)

    def fit(self, x, y, x_test=None, y_test=None):
        """Train the readout for ``epochs`` passes over ``(x, y)``; returns self.

        ``y`` holds integer labels in ``[0, n_classes)``.  Features come from the
        frozen Hebbian weights: once for the whole set with ``precompute=True``,
        otherwise per batch.  With ``x_test, y_test`` the test accuracy after
        every epoch is recorded in :attr:`history_` (the test features are then
        computed once).  With an int ``rng`` every call gives the same result.
        """
        from bionp.data import BatchIterator  # noqa: PLC0415

        W = self._check_x(x)
        self._check_labels(y, x.shape[0])
        if (x_test is None) != (y_test is None):
            raise ValueError("give both x_test and y_test, or neither")
        if x_test is not None:
            self._check_x(x_test)
            self._check_labels(y_test, x_test.shape[0])
        source = x
        self.feature_mean_ = self.feature_std_ = None
        if self.feature_scaling == "standardize":
            raw = self.features_in_chunks(x, scaled=False) if self.precompute else None
            self.feature_mean_, self.feature_std_ = self._feature_statistics(x, raw)
            if raw is not None:
                source = self._scale(raw)
        elif self.precompute:
            source = self.features_in_chunks(x)
        h_test = None if x_test is None else self.features_in_chunks(x_test)
        xp = get_array_module(W)
        init_rng, batch_rng = check_rng(self.rng).spawn(2)
        n_hidden = W.shape[0]
        self.readout_ = init_rng.normal(0.0, self.init_std, (self.n_classes, n_hidden),
                                        dtype=W.dtype, xp=xp)
        self.bias_ = xp.zeros(self.n_classes, dtype=W.dtype)
        self.optimizer_ = self._make_optimizer([{"W": self.readout_, "b": self.bias_}])
        self.history_ = []
        batches = BatchIterator(source, y, self.batch_size, rng=batch_rng)
        for epoch in self._epochs():
            t0 = time.perf_counter()
            if self.lr_decay == "linear":
                self.optimizer_.lr = self.lr * (1.0 - epoch / self.epochs)
            total, correct = xp.zeros((), dtype=xp.float64), xp.zeros((), dtype=xp.int64)
            n_batches = 0
            for xb, yb in batches:
                h = xb if self.precompute else self.features(xb)
                value, grads, z = readout_gradients(h, self.readout_, self.bias_, yb,
                                                    beta=self.beta, loss=self.loss, m=self.m)
                self.optimizer_.step([grads])
                total += value
                correct += xp.count_nonzero(xp.argmax(z, axis=1) == yb)
                n_batches += 1
            record = {
                "epoch": epoch,
                "lr": float(self.optimizer_.lr),
                "loss": to_scalar(total) / n_batches,
                "train_accuracy": 100.0 * to_scalar(correct) / x.shape[0],
                "seconds": time.perf_counter() - t0,
            }
            if h_test is not None:
                record["test_accuracy"] = self._accuracy_of_features(h_test, y_test)
            self.history_.append(record)
        return self

    def _accuracy_of_features(self, h, y) -> float:
        z = h @ self.readout_.T
        z += self.bias_
        xp = get_array_module(z)
        return 100.0 * to_scalar(xp.count_nonzero(xp.argmax(z, axis=1) == y)) / z.shape[0]

    def _epochs(self):
        return progress_range(self.epochs, self.progress, "BioClassifier")

    # -- prediction -----------------------------------------------------------------
    def _require_fitted(self):
        if self.readout_ is None:
            raise RuntimeError("this BioClassifier is not fitted yet: call fit(x, y) first")

    def decision_function(self, x):
        r"""Pre-activations :math:`z = hV^\top + b`, (N, n_classes)."""
        self._require_fitted()
        z = self.features(x) @ self.readout_.T
        z += self.bias_
        return z

    def predict_scores(self, x):
        """Class scores: :math:`c = \\tanh(\\beta z)` (power loss) or softmax of :math:`\\beta z`."""
        z = self.decision_function(x)
        z *= z.dtype.type(self.beta)
        xp = get_array_module(z)
        if self.loss == "power":
            return xp.tanh(z, out=z)
        z -= xp.max(z, axis=1, keepdims=True)
        xp.exp(z, out=z)
        z /= xp.sum(z, axis=1, keepdims=True)
        return z

    def predict(self, x):
        """Predicted class labels, int array (N,)."""
        return get_array_module(self.readout_).argmax(self.decision_function(x), axis=1)

    def score(self, x, y) -> float:
        """Accuracy on ``(x, y)`` in percent."""
        self._require_fitted()
        self._check_x(x)
        self._check_labels(y, x.shape[0])
        xp = get_array_module(y)
        return 100.0 * to_scalar(xp.count_nonzero(self.predict(x) == y)) / x.shape[0]
