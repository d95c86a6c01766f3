r"""Compiled CPU kernels of the random stream (optional: Numba): Philox4x64-10 straight into
uniforms, normals and ±1 values, in one pass over a caller's buffer.

The array code of :mod:`bionp.random` is the definition of the stream; these loops compute
the same numbers without its intermediate arrays (no uint64 words in memory):

* Philox4x64-10 of block counter :math:`c` under key :math:`k` (:mod:`bionp.random.philox`:
  ten rounds, the 64×64→128-bit products taken as one 128-bit multiplication);
* uniforms, float64 :math:`(r \gg 11)\,2^{-53}` (one per word), float32
  :math:`(u_{32} \gg 8)\,2^{-24}` (two per word, low half first): the same integer and
  power-of-two operations as the array code, so **bit-identical**;
* ±s (Rademacher): value :math:`i` is bit :math:`i \bmod 64` of word :math:`\lfloor i/64\rfloor`,
  written as :math:`b\,(2s) - s` in the dtype, as the array code computes it;
* normals by Box–Muller, :math:`z_i = \sqrt{-2\ln(1-u_i)}\cos(2\pi u_{m+i})` and
  :math:`z_{m+i} = \sqrt{-2\ln(1-u_i)}\sin(2\pi u_{m+i})` (:math:`m = \lceil n/2\rceil`), piece by
  piece held in cache, in the array code's order of operations (:mod:`bionp.random._normal`):
  :math:`1-u`, :math:`-2\,\cdot`, the square root (correctly rounded), :math:`2\pi u` and the
  products rounded in the dtype.  float32 (:mod:`bionp._box_muller`): Philox into raw words,
  then one vectorised loop whose :math:`\ln, \cos, \sin` are float64 polynomials rounded to
  float32, the correctly rounded values that define the float32 stream (equal to the array
  code on all :math:`2^{24}` arguments of each function: tested exhaustively); float64:
  :math:`\ln, \cos, \sin` by **NumPy's own loops** (called through NumPy's documented
  low-level access ``ufunc._get_strided_loop``, the loops ``numpy.log`` etc. run).  Both
  are **bit-identical** to the array code on NumPy.

No ``fastmath``: no contraction or reassociation, every float operation rounds as in the
array code.  The kernels release the GIL (``nogil``); :mod:`bionp.random` runs them on its
own threads, one contiguous range of the stream per thread, so the numbers do not depend
on the thread count.  Used through :mod:`bionp.kernels` on NumPy when Numba is installed and
``BIONP_NUMBA`` is not ``0``; compiled on first use and cached on disk by Numba.  Numba is
imported only when :func:`load` is called (the loops are in :mod:`bionp._random_numba`).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from bionp._kernels import load_built

__all__ = ["load", "available"]

_state: dict[str, Any] = {}
_CAPSULE = b"numpy_1.24_ufunc_call_info"


class _CallInfo(ctypes.Structure):
    # NumPy's ufunc_call_info (numpy.ufunc._get_strided_loop's documented layout)
    _fields_ = [("strided_loop", ctypes.c_void_p), ("context", ctypes.c_void_p),
                ("auxdata", ctypes.c_void_p), ("requires_pyapi", ctypes.c_ubyte),
                ("no_floatingpoint_errors", ctypes.c_ubyte)]


def _ufunc_loop(ufunc, dtype):
    """``(capsule, loop, context, auxdata)`` of ``ufunc``'s contiguous one-in one-out loop
    for ``dtype`` (the capsule keeps the rest alive), or ``None`` if this NumPy does not
    give that access or the loop needs the GIL."""
    dt = np.dtype(dtype)
    try:
        _, info = ufunc._resolve_dtypes_and_context((dt, dt))
        ufunc._get_strided_loop(info, fixed_strides=(dt.itemsize, dt.itemsize))
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        ci = _CallInfo.from_address(get(info, _CAPSULE))
    except (AttributeError, TypeError, ValueError):
        return None
    if ci.requires_pyapi or not ci.strided_loop:
        return None
    return info, int(ci.strided_loop), int(ci.context or 0), int(ci.auxdata or 0)


def _through_float64(f):
    """``f`` of a float32 array evaluated in float64 and rounded to float32 once."""
    return lambda a: f(a.astype(np.float64)).astype(np.float32)


def _reference(key, n: int, dt):
    """``n`` uniforms of the stream of ``key`` from counter 0 and the ``n`` normals drawn from
    them, by NumPy alone, in the array code's operations (:mod:`bionp.random`)."""
    bitgen = np.random.Philox(key=np.array(key, dtype=np.uint64))  # blocks 1, 2, …
    if dt == np.float32:  # float32 ln, cos, sin: float64 rounded once (correctly rounded)
        u32 = bitgen.random_raw(-(-n // 2)).view(np.uint32)[:n]
        u = (u32 >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
        log, cos, sin = (_through_float64(f) for f in (np.log, np.cos, np.sin))
    else:
        u = (bitgen.random_raw(n) >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
        log, cos, sin = np.log, np.cos, np.sin
    half = n // 2
    r = log(np.subtract(1, u[:half]))
    r *= -2
    np.sqrt(r, out=r)
    t = u[half:] * dt.type(2 * np.pi)
    return u, np.concatenate([cos(t) * r, sin(t) * r])


def _self_check(kernels) -> bool:
    """Compile (or load) the kernels and compare them with :func:`_reference`, bit for bit;
    a dtype whose normals differ loses its normal kernel (float32: ``"normal32"``, float64:
    its NumPy loops), differing uniforms lose all."""
    key = (0x0123456789ABCDEF, 0xFEDCBA9876543210)
    keys = np.array(key, dtype=np.uint64)
    n = 96
    for dt in (np.dtype(np.float32), np.dtype(np.float64)):
        per_block = 8 if dt == np.float32 else 4
        u_ref, z_ref = _reference(key, n, dt)
        u = np.empty(n, dtype=dt)
        kernels["uniform"](keys, np.array([1, 0, 0, 0], dtype=np.uint64), 0, u)
        if u.tobytes() != u_ref.tobytes():
            return False
        z = np.empty(n, dtype=dt)
        c1 = np.array([1, 0, 0, 0], dtype=np.uint64)
        c2 = np.array([1 + (n // 2) // per_block, 0, 0, 0], dtype=np.uint64)
        consts = np.array([1, -2, dt.type(2 * np.pi), 0, 0], dtype=dt)
        if dt == np.float32 and "normal32" in kernels:
            kernels["normal32"](keys, c1, 0, c2, (n // 2) % per_block, n, n // 2, 0, n // 2, z,
                                consts, 0)
            if z.tobytes() != z_ref.tobytes():
                del kernels["normal32"]
        elif dt in kernels["loops"]:
            kernels["normal"](keys, c1, 0, c2, (n // 2) % per_block, n, n // 2, 0, n // 2, z,
                              consts, False, False, kernels["loops"][dt][1])
            if z.tobytes() != z_ref.tobytes():
                del kernels["loops"][dt]
        kernels["rademacher"](keys, np.array([1, 0, 0, 0], dtype=np.uint64), 0,
                              dt.type(2.0), dt.type(1.0), u)
    return True


def _build():
    """The Numba kernels (float32 normals: ``"normal32"``, :mod:`bionp._box_muller`) and, for
    float64, NumPy's log, cos and sin loops (``"loops"``: the capsules, kept alive, and an
    ``(3, 3)`` intp array of address, context, auxdata); without them float64 has no
    normal kernel.  The kernels are compiled (or loaded from
    Numba's cache) and checked against NumPy's own Philox and ufuncs once, here: ``None``
    (the array code) if they cannot be built or do not give the same bits."""
    try:
        from bionp import _box_muller, _random_numba  # noqa: PLC0415  (Numba: the optional part)
    except ImportError:
        return None
    kernels = {"uniform": _random_numba.uniform, "rademacher": _random_numba.rademacher,
               "normal": _random_numba.normal, "normal32": _box_muller.normal32}
    loops = {}
    got = [_ufunc_loop(f, np.float64) for f in (np.log, np.cos, np.sin)]
    if all(g is not None for g in got):
        loops[np.dtype(np.float64)] = ([g[0] for g in got],
                                       np.array([g[1:] for g in got], dtype=np.intp))
    kernels["loops"] = loops
    try:
        ok = _self_check(kernels)
    except Exception:  # noqa: BLE001  (a kernel that fails to compile: use the array code)
        return None
    return kernels if ok else None


def load():
    """The compiled kernels (a dict), or ``None`` without Numba or with ``BIONP_NUMBA=0``."""
    return load_built(_state, _build)


def available() -> bool:
    """Whether the compiled random kernels can be used."""
    return load() is not None
