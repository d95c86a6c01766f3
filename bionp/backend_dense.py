r"""Compiled kernels of the dense training step, behind the backend (dispatch functions).

Each function takes the array module ``xp`` first and runs a fused kernel of
:mod:`bionp._dense_kernels` where one applies — NumPy arrays of one float32/float64
dtype, C-contiguous, of matching shapes and not overlapping, at least
:data:`MIN_SIZE` elements (smaller arrays cost more to hand to a kernel than the plain
passes take), Numba installed and
``BIONP_NUMBA`` not ``0`` — and otherwise returns ``None``/``False``: the caller then runs
its plain ``xp`` code, which stays the definition of the numbers.  The kernels perform
the plain code's floating-point operations in its order (no fused multiply-add), so both
paths give the same bits (tested in ``tests/test_dense_kernels.py``).

Only NumPy takes the kernels: CuPy and the strict stand-in keep the plain code, so the
parity checks, exact between NumPy and the strict stand-in, compare the kernels with the
array code on every scenario.

* :func:`sgd_step`: one SGD update (momentum, Nesterov, weight decay) in one pass,
  optionally copying the parameter's old value into a backup in the same pass.
* :func:`sigmoid`: the float32 sigmoid in one pass (any size: at (2, 6) 1.5 µs against the
  plain passes' 4.8 µs).
* :func:`sigmoid_tail`: :math:`e \leftarrow 1/(1+e)` in place.
* :func:`sigmoid_vjp`: :math:`(1-a)\,a\,g`.
* :func:`column_sum`: :math:`\sum_n \delta_n` (a bias gradient), summed in NumPy's order.
* :func:`mean`: the mean of a batch's losses, as NumPy computes it, without its wrapper.
* :func:`sum_axis`: ``xp.sum(a, axis=...)``, on NumPy without its wrapper.
* :func:`sign_times`: :math:`\operatorname{sign}(W)\,|M|` (sign-concordant feedback).
* :func:`scale_add`: :math:`B \leftarrow aB + G` in place (a weight mirror's step).
* :func:`half_signs`: :math:`\pm\tfrac12` from random bits (a weight mirror's noise).
* :func:`reusable`: an array of the previous step that nobody but its owner holds any
  more, to be written again instead of allocating a new one (:func:`keepable`: what the
  owner keeps for it).  Each fresh large array is fresh memory: once a few are freed per
  step, the C allocator hands the memory back to the system and every step pays a page
  fault per 4 KiB page again (1,250 faults a step for a 784-500-10 backprop step before
  its weight gradient was reused; 6 after).
"""

from __future__ import annotations

import sys
import types

import numpy as np

from bionp import _dense_kernels

__all__ = ["column_sum", "half_signs", "keepable", "kernels_available", "mean", "reusable",
           "scale_add", "sgd_step", "sigmoid", "sigmoid_tail", "sigmoid_vjp", "sign_times",
           "sum_axis"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_F32 = np.dtype(np.float32)
#: below this many elements the plain passes cost less than calling a kernel (same numbers)
MIN_SIZE = 8192
#: arrays below this many bytes come from the C allocator's heap without page faults (its
#: default threshold for mapping an allocation on its own): not worth keeping for reuse
REUSE_MIN_BYTES = 1 << 17


def _load():
    return _dense_kernels.load()  # imports Numba on the first call


def kernels_available(xp: types.ModuleType) -> bool:
    """Whether the functions below have compiled kernels for ``xp``.

    True on NumPy with Numba installed and ``BIONP_NUMBA`` not ``0``.

    Parameters
    ----------
    xp : module
        The array module.
    """
    return xp is np and _load() is not None


def _flat(arrays, shape, dtype):
    """1-D views of ``arrays`` if each is a C-contiguous NumPy array of ``shape`` and
    ``dtype`` and no two overlap, else ``None``."""
    out = []
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != dtype or a.shape != shape \
                or not a.flags.c_contiguous:
            return None
        out.append(a.reshape(-1))
    for i in range(len(arrays)):
        for j in range(i):
            if np.may_share_memory(arrays[i], arrays[j]):
                return None
    return out


def sgd_step(xp: types.ModuleType, theta, g, lr: float, *, v=None, momentum: float = 0.0,
             nesterov: bool = False, weight_decay: float = 0.0, backup=None) -> bool:
    r"""One SGD step in place, as :class:`bionp.optim.SGD` writes it in array code:
    :math:`g' = \lambda\theta + g` (if ``weight_decay``), :math:`v \leftarrow \mu v + g'`
    (if ``v`` is given), :math:`\theta \leftarrow \theta - \mathrm{lr}\,d` with
    :math:`d = g' + \mu v` (Nesterov), :math:`v` or :math:`g'`; ``backup`` (optional)
    receives :math:`\theta` before the step.  Returns ``False`` (nothing changed) where
    no compiled kernel applies.

    Parameters
    ----------
    xp : module
        The array module of the arrays.
    theta, g : array
        The parameter (updated in place) and its gradient, one shape and float dtype.
    lr : float
        The learning rate.
    v : array or None
        The momentum buffer (updated in place); ``None``: no momentum.
    momentum : float
        :math:`\mu`.
    nesterov : bool
        Nesterov's form of the step.
    weight_decay : float
        :math:`\lambda` (coupled L2).
    backup : array or None
        Receives :math:`\theta` before the step (the Trainer's divergence backup).
    """
    if xp is not np or type(theta) is not np.ndarray or theta.dtype not in _FLOATS \
            or theta.size < MIN_SIZE:
        return False
    k = _load()
    if k is None:
        return False
    arrays = [theta, g] + ([] if v is None else [v]) + ([] if backup is None else [backup])
    flat = _flat(arrays, theta.shape, theta.dtype)
    if flat is None:
        return False
    t, gf = flat[0], flat[1]
    dt = theta.dtype.type
    if v is None and not weight_decay:
        if backup is None:
            k["sgd_plain"](t, gf, dt(lr))
        else:
            k["sgd_plain_backup"](t, gf, flat[2], dt(lr))
        return True
    vf = flat[2] if v is not None else t
    bf = flat[-1] if backup is not None else t
    k["sgd"](t, gf, vf, bf, dt(lr), dt(momentum), dt(weight_decay), v is not None,
             bool(nesterov), bool(weight_decay), backup is not None)
    return True


def sigmoid_tail(xp: types.ModuleType, e) -> bool:
    r""":math:`e \leftarrow 1/(1 + e)` in place (``e`` holding :math:`\exp(-z)`).

    Returns ``False`` (nothing changed) where no compiled kernel applies.

    Parameters
    ----------
    xp : module
        The array module.
    e : array
        :math:`\exp(-z)`, overwritten by the sigmoid of ``z``.
    """
    if xp is not np or type(e) is not np.ndarray or e.size < MIN_SIZE \
            or e.dtype not in _FLOATS or not e.flags.c_contiguous:
        return False
    k = _load()
    if k is None:
        return False
    k["sigmoid_tail"](e.reshape(-1), e.dtype.type(1))
    return True


def sigmoid(xp: types.ModuleType, z, out=None):
    r""":math:`1/(1 + e^{-z})` in one compiled pass, with the bits of the array code
    (negate, ``numpy.exp``, add one, reciprocal) for float32, where a compiled kernel
    applies: also where the compiled exponential gives ``numpy.exp``'s bits on this
    machine (:mod:`bionp._exp32`; compared once, on a probe of inputs, when the kernels
    load) and NumPy ignores underflow (its default; the array code's ``exp`` would report
    it, the kernel reports nothing).

    Parameters
    ----------
    xp : module
        The array module.
    z : array
        The pre-activation.
    out : array or None
        Receives the result: ``z``'s shape and dtype, C-contiguous, writeable; ``z`` itself
        is allowed.

    Returns
    -------
    array or None
        ``out`` (a new array when ``out`` is ``None``), or ``None``: nothing was done, run
        the array code.
    """
    if xp is not np or type(z) is not np.ndarray or z.dtype != _F32 or not z.flags.c_contiguous \
            or z.ndim == 0:
        return None  # any size: one call costs less than the four passes and their errstate
    if out is not None and (type(out) is not np.ndarray or out.dtype != _F32
                            or out.shape != z.shape or not out.flags.c_contiguous
                            or not out.flags.writeable
                            or (out is not z and np.may_share_memory(z, out))):
        return None  # the array code raises where it must (a read-only out)
    if np.geterr()["under"] != "ignore":
        return None
    k = _load()
    if k is None or "sigmoid32" not in k:  # no kernels, or another exponential in NumPy
        return None
    if out is z:
        k["sigmoid32_inplace"](z.reshape(-1))
        return out
    if out is None:
        out = np.empty(z.shape, dtype=_F32)
    k["sigmoid32"](z.reshape(-1), out.reshape(-1))
    return out


def sigmoid_vjp(xp: types.ModuleType, a, g):
    r""":math:`((1 - a)\,a)\,g`, a new array (the sigmoid's backward pass from its output
    ``a``); ``None`` where no compiled kernel applies.

    Parameters
    ----------
    xp : module
        The array module.
    a : array
        The sigmoid's output.
    g : array
        The gradient with respect to the output, the shape of ``a``.
    """
    if xp is not np or type(a) is not np.ndarray or a.size < MIN_SIZE \
            or a.dtype not in _FLOATS:
        return None
    k = _load()
    if k is None:
        return None
    if type(g) is not np.ndarray or g.dtype != a.dtype or g.shape != a.shape \
            or not (a.flags.c_contiguous and g.flags.c_contiguous):
        return None
    out = np.empty(a.shape, dtype=a.dtype)
    k["sigmoid_vjp"](a.reshape(-1), g.reshape(-1), out.reshape(-1), a.dtype.type(1))
    return out


def _plain_host(arrays, dtype):
    """Whether every array is a C-contiguous NumPy array of ``dtype`` (a float dtype)."""
    return dtype in _FLOATS and all(type(a) is np.ndarray and a.dtype == dtype
                                    and a.flags.c_contiguous for a in arrays)


def sign_times(xp: types.ModuleType, W, M, out) -> bool:
    r"""``out`` :math:`= \operatorname{sign}(W)\,|M|` (``M=None``:
    :math:`\operatorname{sign}(W)`) in one pass, as the array code
    ``xp.abs(M, out=out); out *= xp.sign(W)`` writes it (:math:`\operatorname{sign}(0) =
    0`, NaN stays NaN).  Returns ``False`` (nothing changed) where no compiled kernel
    applies (also when ``M`` or ``W`` overlaps ``out``: in place, the array code is
    faster).

    Parameters
    ----------
    xp : module
        The array module.
    W : array
        The weights whose signs are taken.
    M : array or None
        The magnitudes (their absolute values are used), ``W``'s shape.
    out : array
        Receives the result, ``W``'s shape and dtype.
    """
    if xp is not np or W.size < MIN_SIZE:
        return False
    arrays = [W, out] + ([] if M is None else [M])
    if not _plain_host(arrays, W.dtype) or any(a.shape != W.shape for a in arrays) \
            or np.may_share_memory(W, out) \
            or (M is not None and np.may_share_memory(M, out)):
        return False
    k = _load()
    if k is None:
        return False
    flat = out.reshape(-1)
    k["sign_times"](W.reshape(-1), flat if M is None else M.reshape(-1), flat,
                    W.dtype.type(1), M is not None)
    return True


def scale_add(xp: types.ModuleType, B, a: float, G) -> bool:
    r""":math:`B \leftarrow B\,a + G` in place in one pass, as the array code
    ``B *= a; B += G`` writes it (``a`` rounded to ``B``'s dtype).  Returns ``False``
    (nothing changed) where no compiled kernel applies.

    Parameters
    ----------
    xp : module
        The array module.
    B : array
        Updated in place.
    a : float
        The factor on ``B``.
    G : array
        Added, ``B``'s shape and dtype; must not overlap ``B``.
    """
    if xp is not np or B.size < MIN_SIZE or not _plain_host([B, G], B.dtype) \
            or G.shape != B.shape or np.may_share_memory(B, G):
        return False
    k = _load()
    if k is None:
        return False
    k["scale_add"](B.reshape(-1), B.dtype.type(a), G.reshape(-1))
    return True


def half_signs(xp: types.ModuleType, octets, out) -> bool:
    r"""``out`` (flat index ``i``) :math:`=` bit ``i % 8`` of ``octets[i // 8]`` minus
    :math:`\tfrac12` (:math:`\pm\tfrac12`), as the array code
    ``xp.unpackbits(octets, bitorder="little")[:n].astype(dtype) - 0.5`` writes it.
    Returns ``False`` (nothing changed) where no compiled kernel applies.

    Parameters
    ----------
    xp : module
        The array module.
    octets : array
        ``uint8`` random bytes, at least ``ceil(out.size / 8)`` of them, contiguous.
    out : array
        Receives the signs (any shape, C-contiguous, float32 or float64).
    """
    if xp is not np or out.size < MIN_SIZE or not _plain_host([out], out.dtype) \
            or type(octets) is not np.ndarray or octets.dtype != np.uint8 \
            or octets.ndim != 1 or not octets.flags.c_contiguous or octets.size * 8 < out.size:
        return False
    k = _load()
    if k is None:
        return False
    k["half_signs"](octets, out.reshape(-1), out.dtype.type(0.5))
    return True


def column_sum(xp: types.ModuleType, a):
    r""":math:`o_j = \sum_i a_{ij}`, a new array (the sum over the batch that gives a bias
    gradient); ``None`` where no compiled kernel applies.

    The same numbers as ``a.sum(axis=0)``: NumPy sums each column of a C-contiguous matrix
    with two or more columns from zero in row order (a single column it sums pairwise, and
    is left to it); the kernel does that in one pass that reads the rows contiguously
    (NumPy's reduction over the outer axis is several times slower).

    Parameters
    ----------
    xp : module
        The array module.
    a : array
        The matrix ``(N, M)``, ``M >= 2``.
    """
    if xp is not np or type(a) is not np.ndarray or a.size < MIN_SIZE or a.dtype not in _FLOATS \
            or a.ndim != 2 or a.shape[1] < 2 or not a.flags.c_contiguous:
        return None
    k = _load()
    if k is None:
        return None
    out = np.empty(a.shape[1], dtype=a.dtype)
    k["column_sum"](a, out, a.dtype.type(0))
    return out


def mean(a):
    """``xp.mean(a)`` of all entries; for a 1-D NumPy float array, NumPy's own operations
    (the sum, divided by the count: the same bits) without its Python wrapper, which costs
    more than the arithmetic on a batch's losses.

    NumPy divides the float32/float64 sum by the count as an ``intp``, in float64, and
    rounds to the sum's dtype; Python's float division is that same float64 division
    (the sum and the count convert exactly) without NumPy's scalar promotion.

    Parameters
    ----------
    a : array
    """
    if type(a) is np.ndarray and a.ndim == 1 and a.dtype.kind == "f" and a.shape[0]:
        total = np.add.reduce(a)
        dt = total.dtype.type
        if total.dtype in _FLOATS:
            return dt(float(total) / a.shape[0])
        return dt(total / np.intp(a.shape[0]))
    return a.mean()


def sum_axis(xp: types.ModuleType, a, axis: int):
    """``xp.sum(a, axis=axis)``; for a NumPy array the reduction NumPy's ``sum`` runs
    (``np.add.reduce``: the same bits) without its Python wrapper.

    Parameters
    ----------
    xp : module
        The array module of ``a``.
    a : array
    axis : int
    """
    if type(a) is np.ndarray:
        return np.add.reduce(a, axis=axis)
    return xp.sum(a, axis=axis)


def _count(buf) -> int:
    return _getrefcount(buf)


_getrefcount = getattr(sys, "getrefcount", None)


def _owner_only_count():
    """What :func:`_count` says of an array held by one attribute only (measured, so that an
    interpreter counting references differently is still read right), or ``None`` when the
    measurement is not consistent (one more holder must count exactly one more).  A Python
    tracer or profiler that reads frames' locals would hold references of its own, so the
    probe runs without them."""
    if _getrefcount is None:
        return None

    def through_a_call(buf):  # as reusable(buf, like) calls _count(buf)
        return _count(buf)

    trace, profile = sys.gettrace(), sys.getprofile()
    sys.settrace(None)
    sys.setprofile(None)
    try:
        holder = types.SimpleNamespace(a=np.empty(1))
        alone = through_a_call(holder.a)
        extra = holder.a  # noqa: F841  (a second holder)
        held = through_a_call(holder.a)
    finally:
        sys.settrace(trace)
        sys.setprofile(profile)
    return alone if held == alone + 1 else None


_OWNER_ONLY = _owner_only_count()


def reusable(buf, like, xp=None):
    """``buf`` if it is a writeable C-contiguous NumPy array of ``like``'s shape and dtype that
    only its owner's attribute references (no caller holds it or a view of it), else ``None``.

    Pass the owner's attribute itself (``reusable(self._buf, G)``), not a local copy of it.

    Parameters
    ----------
    buf : array or None
        The owner's array from an earlier call.
    like : array or tuple
        The array whose shape and dtype the result must have (a NumPy array, else the result
        is ``None``), or that ``(shape, dtype)`` together with ``xp``.
    xp : module, optional
        With a ``(shape, dtype)`` ``like``: the array module of the call; anything but NumPy
        gives ``None`` (a buffer kept from a NumPy call is never handed to another backend).

    Returns
    -------
    array or None
        ``buf``, to be written again, or ``None``: allocate a new array.
    """
    if type(like) is tuple:
        if xp is not np:
            return None
        shape, dtype = like
    elif type(like) is np.ndarray:
        shape, dtype = like.shape, like.dtype
    else:
        return None
    if _OWNER_ONLY is None or type(buf) is not np.ndarray \
            or buf.shape != tuple(shape) or buf.dtype != dtype \
            or not buf.flags.c_contiguous or not buf.flags.writeable \
            or _count(buf) > _OWNER_ONLY:
        return None
    return buf


def keepable(a):
    """``a`` if :func:`reusable` could hand it back later and it is worth it (a NumPy array
    of at least :data:`REUSE_MIN_BYTES`), else ``None``: what an owner keeps, so that a GPU
    array is not held after its caller drops it, and a small one costs no reference-count
    check on the next call.

    Parameters
    ----------
    a : array
        The array just computed (e.g. a gradient the caller receives).

    Returns
    -------
    array or None
        ``a`` if it is a NumPy array of at least :data:`REUSE_MIN_BYTES`, else ``None``.
    """
    return a if type(a) is np.ndarray and a.nbytes >= REUSE_MIN_BYTES else None
