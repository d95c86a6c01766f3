"""Evaluation data for training loops: class labels from targets, test data in either spelling.

The :class:`~bionp.train.Trainer` measures accuracy as the fraction of rows whose
output's arg-max equals the class label.  The labels come from ``labels=`` /
``labels_test=`` when given, else from the targets when these say unambiguously
which class each row is (integer labels, one-hot rows).
"""

from __future__ import annotations

from bionp.backend import get_array_module, to_scalar
from bionp.nn.losses import check_target
from bionp.validation import check_finite

__all__ = ["labels_from_target", "check_rows", "check_samples_shape", "check_values",
           "evaluation_data"]


def labels_from_target(target, name: str):
    """``(labels, None)`` from integer targets or one-hot rows, else ``(None, why)``.

    Integer ``(N,)`` targets are the labels; ``(N, C)`` rows with one 1 and the rest 0 give
    :math:`\\ell_i = \\arg\\max_c t_{ic}`.  Anything else (regression values, smoothed or
    scaled one-hot codes, float labels) is ambiguous and gives ``None`` with the reason.

    Parameters
    ----------
    target : array (N,) or (N, C)
    name : str
        The argument's name in the reason.
    """
    xp = get_array_module(target)
    kind = target.dtype.kind
    if target.ndim == 1 and kind in "iu":
        return target, None
    if target.ndim == 2 and kind in "iuf" and target.shape[1] > 1:
        binary = bool(to_scalar(xp.all((target == 0) | (target == 1))))
        if binary and bool(to_scalar(xp.all(target.sum(axis=1) == 1))):
            return xp.argmax(target, axis=1), None
        return None, (f"{name} of shape {tuple(target.shape)} is not one-hot rows (every row "
                      "one 1, the rest 0)")
    return None, (f"{name} of shape {tuple(target.shape)} and dtype {target.dtype} is neither "
                  "integer class labels (N,) nor one-hot rows (N, classes)")


def check_rows(name, a, n) -> None:
    """Refuse ``a`` unless it is an array with ``n`` rows (one per sample).

    Parameters
    ----------
    name : str
        The argument's name in the message.
    a : array
    n : int
    """
    if not hasattr(a, "shape") or a.ndim < 1 or a.shape[0] != n:
        got = tuple(a.shape) if hasattr(a, "shape") else type(a).__name__
        raise ValueError(f"{name} must have {n} rows (one per sample), got {got}")


def evaluation_data(x_test, target_test, labels_test, validation_data):
    """``(x, labels, target)`` to evaluate each epoch, or None.

    ``validation_data`` is ``(x, target)`` or ``(x, target, labels)`` (Keras' spelling of
    ``x_test, target_test, labels_test``).  Labels are taken from ``labels_test`` or derived
    from ``target_test`` (:func:`labels_from_target`); evaluation data whose accuracy cannot
    be measured (regression targets without ``labels_test``), parts given without ``x_test``
    and row counts that differ are refused with a ``ValueError``.

    Parameters
    ----------
    x_test, target_test, labels_test : arrays or None
    validation_data : tuple or None
    """
    if validation_data is not None:
        if x_test is not None or target_test is not None or labels_test is not None:
            raise ValueError("give evaluation data either as validation_data=(x, target) or as "
                             "x_test=, target_test=, labels_test=, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            size = len(validation_data) if hasattr(validation_data, "__len__") else "?"
            raise ValueError("validation_data must be (x, target) or (x, target, labels), got "
                             f"{type(validation_data).__name__} of length {size}")
        x_test, target_test = validation_data[:2]
        labels_test = validation_data[2] if len(validation_data) == 3 else None
    if x_test is None:
        if target_test is not None or labels_test is not None:
            raise ValueError("target_test/labels_test were given without x_test: pass "
                             "x_test= too (or validation_data=(x, target))")
        return None
    if target_test is None and labels_test is None:
        raise ValueError("x_test was given without target_test or labels_test: pass the test "
                         "targets (integer labels or one-hot rows) as target_test=")
    n = x_test.shape[0]
    for name, a in (("target_test", target_test), ("labels_test", labels_test)):
        if a is not None:
            check_rows(name, a, n)
    if labels_test is None:
        labels_test, why = labels_from_target(target_test, "target_test")
        if labels_test is None:
            raise ValueError(f"cannot measure test accuracy: {why}; pass labels_test= with "
                             "the test set's integer class labels")
    return x_test, labels_test, target_test


def check_samples_shape(net, x, name: str = "x") -> None:
    """Refuse ``x`` unless it is flat rows ``(N, features)`` or, for a network with a shaped
    ``input_shape`` (images ``(C, H, W)``), samples of that shape ``(N, C, H, W)``.

    Parameters
    ----------
    net : Sequential or MLP
    x : array
    name : str, default "x"
        The argument's name in the message.
    """
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) == 2:
        return
    want = tuple(int(s) for s in getattr(net, "input_shape", ()) or ())
    if len(want) > 1:
        if shape[1:] == want:
            return
        dims = ", ".join(str(s) for s in want)
        raise ValueError(f"{name} must have shape (samples, {dims}) for this network (its "
                         f"input_shape is {want}) or be flat rows (samples, features), "
                         f"got shape {shape}")
    raise ValueError(f"{name} must be 2-D (samples, features), got shape {shape}"
                     + (" (flatten images with x.reshape(len(x), -1))" if len(shape) > 2 else ""))


def check_values(net, x, target, x_name: str = "x", target_name: str = "target") -> None:
    """The value checks that layers and losses would repeat on every batch (NaN/Inf, labels
    in range), made once for a whole data set: one host read each instead of two per step
    (the Trainer then trains inside :func:`bionp.validation.data_checked`).

    Parameters
    ----------
    net : Sequential or MLP
    x, target : arrays
    x_name, target_name : str
        The arguments' names in the messages.
    """
    check_finite(x, x_name, "clean or mask them before training")
    n_out = getattr(net, "out_features", None)
    if target is not None and n_out is not None:
        check_target(target, n_out, target_name)
