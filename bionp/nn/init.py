r"""Weight initialisers for a matrix of shape ``(fan_out, fan_in)``.

For a convolution kernel ``(out, in, kh, kw)`` the fans are ``in*kh*kw`` and
``out*kh*kw`` (as in PyTorch).

==================  ===========================================================
``normal``          :math:`\mathcal N(0, s^2)`, ``s = scale`` (the Microlearning
                    tutorial's scheme, ``s = 0.1``)
``uniform``         :math:`\mathcal U(-s, s)`, ``s = scale``
``xavier_uniform``  :math:`\mathcal U(-a, a)`, :math:`a = g\sqrt{6/(n_{in}+n_{out})}`
``xavier_normal``   :math:`\mathcal N(0, g^2\,2/(n_{in}+n_{out}))`
``he_uniform``      :math:`\mathcal U(-a, a)`, :math:`a = g\sqrt{6/n_{in}}`
``he_normal``       :math:`\mathcal N(0, g^2\,2/n_{in})`
``zeros``           all zero
==================  ===========================================================

``scale`` applies to ``normal`` and ``uniform`` only; the Xavier (Glorot &
Bengio 2010) and He (He et al. 2015) initialisers take a ``gain`` ``g``
(default 1).  All draws come from :class:`bionp.random.Generator` (``rng=``).
"""

from __future__ import annotations

import math

from bionp.backend import get_xp, resolve_dtype
from bionp.random import check_rng

__all__ = ["normal", "uniform", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
           "zeros", "get_initializer", "INITIALIZERS"]


def _fans(shape):
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = 1
    for s in shape[2:]:  # a convolution kernel (out, in, kh, kw): each weight sees kh*kw
        receptive *= s
    return shape[1] * receptive, shape[0] * receptive


def normal(shape, scale: float = 0.1, rng=None, dtype=None):
    """Draws from :math:`\\mathcal N(0, \\mathrm{scale}^2)`.

    Parameters
    ----------
    shape : tuple of int
        ``(fan_out, fan_in)`` for a dense layer, ``(out, in, kh, kw)`` for a kernel.
    scale : float, default 0.1
        Standard deviation.
    rng : int, Generator or None
        Source of the draw (:func:`bionp.random.check_rng`).
    dtype : dtype or None
        Float dtype of the result; ``None`` takes :func:`bionp.get_dtype`.

    Returns
    -------
    array of ``shape`` on the active backend
    """
    return check_rng(rng).normal(0.0, float(scale), size=shape, dtype=resolve_dtype(dtype))


def uniform(shape, scale: float = 0.1, rng=None, dtype=None):
    """Draws from :math:`\\mathcal U(-\\mathrm{scale}, \\mathrm{scale})`.

    Parameters
    ----------
    shape : tuple of int
        ``(fan_out, fan_in)`` for a dense layer, ``(out, in, kh, kw)`` for a kernel.
    scale : float, default 0.1
        Half-width of the interval.
    rng : int, Generator or None
        Source of the draw (:func:`bionp.random.check_rng`).
    dtype : dtype or None
        Float dtype of the result; ``None`` takes :func:`bionp.get_dtype`.

    Returns
    -------
    array of ``shape`` on the active backend
    """
    s = float(scale)
    return check_rng(rng).uniform(-s, s, size=shape, dtype=resolve_dtype(dtype))


def xavier_uniform(shape, gain: float = 1.0, rng=None, dtype=None):
    """Glorot & Bengio (2010): :math:`\\mathcal U(-a, a)`, :math:`a = g\\sqrt{6/(n_{in}+n_{out})}`.

    Parameters
    ----------
    shape : tuple of int
        ``(fan_out, fan_in)`` for a dense layer, ``(out, in, kh, kw)`` for a kernel.
    gain : float, default 1
        :math:`g`.
    rng : int, Generator or None
        Source of the draw (:func:`bionp.random.check_rng`).
    dtype : dtype or None
        Float dtype of the result; ``None`` takes :func:`bionp.get_dtype`.

    Returns
    -------
    array of ``shape`` on the active backend
    """
    fan_in, fan_out = _fans(shape)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return check_rng(rng).uniform(-a, a, size=shape, dtype=resolve_dtype(dtype))


def xavier_normal(shape, gain: float = 1.0, rng=None, dtype=None):
    """Glorot & Bengio (2010): :math:`\\mathcal N(0, g^2\\,2/(n_{in}+n_{out}))`.

    Parameters
    ----------
    shape : tuple of int
        ``(fan_out, fan_in)`` for a dense layer, ``(out, in, kh, kw)`` for a kernel.
    gain : float, default 1
        :math:`g`.
    rng : int, Generator or None
        Source of the draw (:func:`bionp.random.check_rng`).
    dtype : dtype or None
        Float dtype of the result; ``None`` takes :func:`bionp.get_dtype`.

    Returns
    -------
    array of ``shape`` on the active backend
    """
    fan_in, fan_out = _fans(shape)
    return check_rng(rng).normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), size=shape,
                                 dtype=resolve_dtype(dtype))


def he_uniform(shape, gain: float = 1.0, rng=None, dtype=None):
    """He et al. (2015): :math:`\\mathcal U(-a, a)`, :math:`a = g\\sqrt{6/n_{in}}`.

    Parameters
    ----------
    shape : tuple of int
        ``(fan_out, fan_in)`` for a dense layer, ``(out, in, kh, kw)`` for a kernel.
    gain : float, default 1
        :math:`g`.
    rng : int, Generator or None
        Source of the draw (:func:`bionp.random.check_rng`).
    dtype : dtype or None
        Float dtype of the result; ``None`` takes :func:`bionp.get_dtype`.

    Returns
    -------
    array of ``shape`` on the active backend
    """
    fan_in, _ = _fans(shape)
    a = gain * math.sqrt(6.0 / fan_in)
    return check_rng(rng).uniform(-a, a, size=shape, dtype=resolve_dtype(dtype))


def he_normal(shape, gain: float = 1.0, rng=None, dtype=None):
    """He et al. (2015): :math:`\\mathcal N(0, g^2\\,2/n_{in})`.

    Parameters
    ----------
    shape : tuple of int
        ``(fan_out, fan_in)`` for a dense layer, ``(out, in, kh, kw)`` for a kernel.
    gain : float, default 1
        :math:`g`.
    rng : int, Generator or None
        Source of the draw (:func:`bionp.random.check_rng`).
    dtype : dtype or None
        Float dtype of the result; ``None`` takes :func:`bionp.get_dtype`.

    Returns
    -------
    array of ``shape`` on the active backend
    """
    fan_in, _ = _fans(shape)
    return check_rng(rng).normal(0.0, gain * math.sqrt(2.0 / fan_in), size=shape,
                                 dtype=resolve_dtype(dtype))


def zeros(shape, rng=None, dtype=None, **_):
    """All zeros (``rng`` is accepted and unused, like any other keyword).

    Parameters
    ----------
    shape : tuple of int
        ``(fan_out, fan_in)`` for a dense layer, ``(out, in, kh, kw)`` for a kernel.
    **_ 
        Ignored (the other initialisers' keywords).
    rng : int, Generator or None
        Source of the draw (:func:`bionp.random.check_rng`).
    dtype : dtype or None
        Float dtype of the result; ``None`` takes :func:`bionp.get_dtype`.

    Returns
    -------
    array of ``shape`` on the active backend
    """
    return get_xp().zeros(tuple(int(s) for s in shape), dtype=resolve_dtype(dtype))


INITIALIZERS = {
    "normal": normal, "uniform": uniform, "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform, "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal, "he_uniform": he_uniform, "he_normal": he_normal,
    "kaiming_uniform": he_uniform, "kaiming_normal": he_normal, "zeros": zeros,
}

_SCALED = ("normal", "uniform")


def get_initializer(name):
    """The initialiser function called ``name`` (or ``name`` itself if callable).

    Parameters
    ----------
    name : str or callable
        A key of :data:`INITIALIZERS` (case-insensitive, ``-`` read as ``_``), or a
        function ``f(shape, rng=, dtype=)``, returned as it is.

    Returns
    -------
    callable
    """
    if callable(name):
        return name
    key = str(name).lower().replace("-", "_")
    if key not in INITIALIZERS:
        raise ValueError(
            f"unknown initialiser {name!r}; known: {', '.join(sorted(INITIALIZERS))} "
            "(or pass a callable f(shape, rng=, dtype=))"
        )
    return INITIALIZERS[key]


def initialize(init, shape, scale, rng, dtype):
    """Call initialiser ``init`` with ``scale`` where it takes one (normal/uniform)."""
    fn = get_initializer(init)
    if isinstance(init, str) and init.lower().replace("-", "_") in _SCALED:
        return fn(shape, scale=scale, rng=rng, dtype=dtype)
    return fn(shape, rng=rng, dtype=dtype)
