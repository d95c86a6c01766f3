r"""Losses with their gradients, batch-mean convention.

For a batch of :math:`N` samples with outputs :math:`o_n` and targets :math:`t_n`
every loss is the **mean over the batch** of a per-sample loss,
:math:`L = \frac1N \sum_n \ell(o_n, t_n)`, and ``grad`` returns
:math:`\partial L/\partial o` (so it carries the factor :math:`1/N`).

* :class:`MSELoss`: :math:`\ell = \sum_k (o_{nk} - t_{nk})^2` — the sum over
  outputs, **no** factor ½, exactly the Microlearning tutorial's ``mse_loss``;
  :math:`\partial L/\partial o = 2(o - t)/N`.
* :class:`CrossEntropyLoss` on logits :math:`z`:
  :math:`\ell = -\sum_k t_{nk} \log \operatorname{softmax}(z_n)_k` with a stable
  log-softmax; :math:`\partial L/\partial z = (\operatorname{softmax}(z) - t)/N`.

Targets may be integer class labels of shape ``(N,)`` (turned into one-hot
rows) or arrays of shape ``(N, C)`` (one-hot, probabilities or, for MSE, any
real targets).

A network whose output activation is softmax and that is trained with
cross-entropy should give the loss its *logits*; :func:`output_loss` and
:func:`output_delta` do that pairing (the fused path): they evaluate the loss
on the pre-activation :math:`z` and return :math:`(p - t)/N` directly.
"""

from __future__ import annotations

from bionp.backend import asnumpy, check_same_backend, get_array_module
from bionp.backend_dense import mean, sum_axis
from bionp.validation import check_finite, check_float_dtype, data_already_checked

__all__ = [
    "Loss", "MSELoss", "CrossEntropyLoss", "get_loss", "LOSSES",
    "output_loss", "output_delta", "prepare_target",
]


def _is_integer_dtype(dt) -> bool:
    return dt.kind in "iu"


def prepare_target(target, n_samples: int, n_outputs: int, dtype, *, xp=None, check_labels=True):
    """Validate ``target`` against the output shape; return a float ``(N, C)`` array.

    Integer labels of shape ``(N,)`` become one-hot rows; labels outside
    ``[0, n_outputs)`` raise ``ValueError``.  A float target must have shape
    ``(N, C)`` and be finite.

    Parameters
    ----------
    target : array
        Integer labels ``(N,)`` or a float target ``(N, C)``.
    n_samples : int
        ``N``, the number of rows of the input.
    n_outputs : int
        ``C``, the number of outputs.
    dtype : dtype
        The float dtype of the result.
    xp : module, optional
        The array module; ``target``'s when ``None``.
    check_labels : bool, default True
        Check that integer labels lie in ``[0, n_outputs)``.
    """
    if not hasattr(target, "shape") or not hasattr(target, "dtype"):
        raise TypeError(
            f"target must be an array (integer labels (N,) or (N, {n_outputs})), got "
            f"{type(target).__name__}; convert it with bionp.asarray(target)"
        )
    if target.dtype.kind not in "iuf":
        raise TypeError(
            f"target must hold integer labels (N,) or real floats (N, {n_outputs}), got dtype "
            f"{target.dtype}; convert it, e.g. labels.astype(numpy.int64)"
        )
    shape = tuple(target.shape)
    if len(shape) == 1 and _is_integer_dtype(target.dtype):
        if xp is None:
            xp = get_array_module(target)
        if shape[0] != n_samples:
            raise ValueError(
                f"target has {shape[0]} labels but x has {n_samples} samples; pass one label "
                "per row of x"
            )
        if check_labels and n_samples and not data_already_checked():
            check_label_range(target, n_outputs, xp)
        onehot = xp.zeros((n_samples, n_outputs), dtype=dtype)
        onehot[xp.arange(n_samples), target] = 1
        return onehot
    if len(shape) != 2 or shape[0] != n_samples or shape[1] != n_outputs:
        raise ValueError(
            f"target must have shape ({n_samples}, {n_outputs}) (or be integer labels of shape "
            f"({n_samples},)) to match x with {n_samples} samples and a network with "
            f"{n_outputs} outputs; got shape {shape}"
        )
    if target.dtype != dtype:
        target = target.astype(dtype)
    if not data_already_checked():
        _check_finite(xp, target, "target")
    return target


def check_label_range(labels, n_outputs: int, xp=None) -> None:
    """``ValueError`` unless every integer label lies in ``[0, n_outputs)`` (one host read)."""
    if xp is None:
        xp = get_array_module(labels)
    if not labels.size:
        return
    lo, hi = (int(v) for v in asnumpy(xp.stack([xp.min(labels), xp.max(labels)])))
    if lo < 0 or hi >= n_outputs:
        raise ValueError(
            f"class labels must lie in [0, {n_outputs}) for a network with {n_outputs} "
            f"outputs; got labels from {lo} to {hi}"
        )


def check_target(target, n_outputs: int, what: str = "target") -> None:
    """The checks :func:`prepare_target` makes on values, for a whole data set at once:
    integer labels in range, float targets finite (shapes are checked per batch)."""
    if target.dtype.kind in "iu" and target.ndim == 1:
        check_label_range(target, n_outputs)
    elif target.dtype.kind == "f":
        check_finite(target, what, "clean or mask them before training")


def _is_prepared(out, t) -> bool:
    """Whether ``t`` looks like prepare_target's result for ``out`` (same shape and dtype)."""
    return getattr(t, "shape", None) == out.shape and getattr(t, "dtype", None) == out.dtype


def _defined_together(cls, public: str, unchecked: str) -> bool:
    """Whether the class in ``cls``'s MRO that defines ``public`` also defines ``unchecked``
    (not None): the unchecked computation is then the public method's own."""
    for klass in cls.__mro__:
        if public in vars(klass):
            return vars(klass).get(unchecked) is not None
    return False


def _check_finite(xp, a, what: str) -> None:
    check_finite(a, what, "clean or mask them before training")


class Loss:
    """Base class: ``loss(out, target)`` → 0-d array; ``grad(out, target)`` → ∂L/∂out."""

    name = "loss"

    def __call__(self, out, target):
        xp = check_same_backend(out, target, names=("out", "target"))
        return xp.mean(self.per_sample(out, target))

    def per_sample(self, out, target):  # pragma: no cover - abstract
        """The per-sample losses :math:`\\ell_n`, shape ``(N,)``."""
        raise NotImplementedError

    def grad(self, out, target):  # pragma: no cover - abstract
        raise NotImplementedError

    # The training path (output_loss / output_delta) has validated its target once with
    # prepare_target; these skip the second validation.  A loss provides the unchecked
    # computations as ``_unchecked_per_sample(out, t)`` / ``_unchecked_grad(out, t)``
    # (static or class methods), used only while the class that defines them also defines
    # the public method in force: a subclass that overrides per_sample/grad, and a raw
    # (unprepared) target, take the public methods.
    _unchecked_per_sample = None
    _unchecked_grad = None

    def _per_sample_prepared(self, out, t):
        if _defined_together(type(self), "per_sample", "_unchecked_per_sample") \
                and _is_prepared(out, t):
            return self._unchecked_per_sample(out, t)
        return self.per_sample(out, t)

    def _grad_prepared(self, out, t):
        if _defined_together(type(self), "grad", "_unchecked_grad") and _is_prepared(out, t):
            return self._unchecked_grad(out, t)
        return self.grad(out, t)

    def _target(self, out, target):
        check_float_dtype(out, "out")
        if out.ndim != 2:
            raise ValueError(f"out must have shape (N, C), got {tuple(out.shape)}")
        return prepare_target(target, out.shape[0], out.shape[1], out.dtype,
                              xp=get_array_module(out))

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSELoss(Loss):
    r"""Mean over the batch of the summed squared error, :math:`\frac1N\sum_n\|o_n - t_n\|^2`.

    This is the Microlearning tutorial's loss (no factor ½).
    ``grad`` is :math:`2(o - t)/N`.
    """

    name = "mse"

    def per_sample(self, out, target):
        check_same_backend(out, target, names=("out", "target"))
        return self._sum_squares(out, self._target(out, target))

    def grad(self, out, target):
        check_same_backend(out, target, names=("out", "target"))
        return self._twice_diff(out, self._target(out, target))

    @staticmethod
    def _sum_squares(out, t):
        d = out - t
        d *= d
        return sum_axis(get_array_module(d), d, 1)

    @staticmethod
    def _twice_diff(out, t):
        g = out - t
        g *= out.dtype.type(2.0 / out.shape[0])
        return g

    _unchecked_per_sample = _sum_squares
    _unchecked_grad = _twice_diff


class CrossEntropyLoss(Loss):
    r"""Softmax cross-entropy on logits, :math:`-\frac1N\sum_n\sum_k t_{nk}\log p_{nk}`.

    :math:`\log p = z - \max z - \log\sum e^{z - \max z}` (stable).
    ``grad`` is :math:`(p - t)/N`.  Targets: int labels ``(N,)`` or ``(N, C)``
    probabilities.
    """

    name = "cross_entropy"

    @staticmethod
    def log_softmax(z):
        xp = get_array_module(z)
        s = z - xp.max(z, axis=1, keepdims=True)
        e = xp.exp(s)
        s -= xp.log(xp.sum(e, axis=1, keepdims=True))
        return s

    def per_sample(self, out, target):
        check_same_backend(out, target, names=("logits", "target"))
        return self._cross_entropy(out, self._target(out, target))

    def grad(self, out, target):
        check_same_backend(out, target, names=("logits", "target"))
        return self._softmax_minus(out, self._target(out, target))

    @classmethod
    def _cross_entropy(cls, out, t):
        lp = cls.log_softmax(out)
        lp *= t
        return -get_array_module(lp).sum(lp, axis=1)

    @classmethod
    def _softmax_minus(cls, out, t):
        p = get_array_module(out).exp(cls.log_softmax(out))
        p -= t
        p *= out.dtype.type(1.0 / out.shape[0])
        return p

    _unchecked_per_sample = _cross_entropy
    _unchecked_grad = _softmax_minus


LOSSES = {"mse": MSELoss, "mse_loss": MSELoss, "cross_entropy": CrossEntropyLoss,
          "crossentropy": CrossEntropyLoss, "ce": CrossEntropyLoss}


def get_loss(name_or_obj) -> Loss:
    """A :class:`Loss` from its name (``"mse"``, ``"cross_entropy"``/``"ce"``) or an instance.

    Parameters
    ----------
    name_or_obj : str or Loss
    """
    if isinstance(name_or_obj, Loss):
        return name_or_obj
    if isinstance(name_or_obj, str):
        key = name_or_obj.lower().replace("-", "_")
        if key in LOSSES:
            return LOSSES[key]()
        raise ValueError(
            f"unknown loss {name_or_obj!r}; known losses: {', '.join(sorted(LOSSES))} "
            "(or pass a bionp.nn.Loss instance)"
        )
    raise TypeError(f"loss must be a name or a bionp.nn.Loss, got {type(name_or_obj).__name__}")


def _fused(activation, loss_fn) -> bool:
    return getattr(activation, "name", None) == "softmax" and isinstance(loss_fn, CrossEntropyLoss)


def per_sample_prepared(loss_fn, out, target):
    """``loss_fn.per_sample(out, target)`` for a target already prepared by
    :func:`prepare_target` (not validated again)."""
    prepared = getattr(loss_fn, "_per_sample_prepared", None)
    return prepared(out, target) if prepared is not None else loss_fn.per_sample(out, target)


def output_loss(loss_fn, activation, z, a, target, *, per_sample=False):
    """Loss of a network's output: on the logits ``z`` for softmax + cross-entropy, else on ``a``.

    ``target`` must already be a prepared ``(N, C)`` float array.  Returns the
    batch mean (0-d) or, with ``per_sample=True``, the ``(N,)`` per-sample losses.

    Parameters
    ----------
    loss_fn : Loss
        The network's loss.
    activation : Activation
        The output layer's activation.
    z : array
        Output pre-activations (logits) ``(N, C)``.
    a : array
        Output activations ``(N, C)``.
    target : array
        Prepared float target ``(N, C)`` (:func:`prepare_target`).
    per_sample : bool, default False
        Return the ``(N,)`` per-sample losses instead of their mean.
    """
    o = z if _fused(activation, loss_fn) else a
    prepared = getattr(loss_fn, "_per_sample_prepared", None)  # per_sample_prepared, inline
    ls = prepared(o, target) if prepared is not None else loss_fn.per_sample(o, target)
    if per_sample:
        return ls
    return mean(ls)


def output_delta(loss_fn, activation, z, a, target):
    r""":math:`\partial L/\partial z` of the output layer (batch-mean convention).

    Softmax + cross-entropy: the fused :math:`(p - t)/N` with :math:`p = a`;
    otherwise ``activation.vjp(z, a, loss_fn.grad(a, target))``.

    Parameters
    ----------
    loss_fn : Loss
        The network's loss.
    activation : Activation
        The output layer's activation.
    z : array
        Output pre-activations ``(N, C)``.
    a : array
        Output activations ``(N, C)``.
    target : array
        Prepared float target ``(N, C)`` (:func:`prepare_target`).
    """
    if _fused(activation, loss_fn):
        g = a - target
        g *= a.dtype.type(1.0 / a.shape[0])
        return g
    prepared = getattr(loss_fn, "_grad_prepared", None)
    g = prepared(a, target) if prepared is not None else loss_fn.grad(a, target)
    return activation.vjp(z, a, g)
