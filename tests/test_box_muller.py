"""float32 Box–Muller: the definition is correctly rounded, and the kernel equals it everywhere.

The float32 normals of :mod:`bionp.random._normal` take :math:`\\mathrm{fl}_{32}` of the
float64 ``log``, ``cos`` and ``sin`` of their float32 arguments.  The arguments are finite
sets (``x = 1 - u`` and ``theta = u * fl(2 pi)`` for the 2**24 uniforms ``u = k 2**-24``),
so both claims are checked on every argument, not sampled:

* every float64 value lies far (>= 8 float64 ulp) from a float32 rounding midpoint, so any
  float64 evaluation accurate to a few ulp rounds to the same float32 -- the correctly
  rounded one (the few closest cases against 200-bit arithmetic, with mpmath);
* the Numba kernel's own float64 polynomials (:mod:`bionp._box_muller`) give the array
  code's bits for all 2**24 arguments of each function, and whole normals for every 4th
  u1 (every 64th with scale and loc) paired with a shuffle of the u2.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from bionp.random._normal import _rounded

K = np.arange(2**24, dtype=np.int64)
U = K.astype(np.float32) * np.float32(2.0**-24)  # every float32 uniform
X = np.float32(1) - U  # every argument of log
THETA = U * np.float32(2 * np.pi)  # every argument of cos and sin
CASES = {"log": (np.log, X), "cos": (np.cos, THETA), "sin": (np.sin, THETA)}


@functools.lru_cache(maxsize=None)
def definition(name):
    """The array code's float32 ``name`` on all its arguments (computed once)."""
    f, a = CASES[name]
    out = np.empty_like(a)
    _rounded(np, f, a, out)
    return out


def _bits(a):
    return a.view(np.uint32)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_results_are_far_from_float32_midpoints(name):
    f, a = CASES[name]
    y = f(a.astype(np.float64))
    y32 = definition(name)
    assert np.array_equal(_bits(y32), _bits(y.astype(np.float32)))
    lo = np.nextafter(y32, np.float32(-np.inf)).astype(np.float64)
    hi = np.nextafter(y32, np.float32(np.inf)).astype(np.float64)
    # distance to the nearer midpoint between y32 and its neighbours, in float64 ulp of y
    y32d = y32.astype(np.float64)
    d = np.minimum(np.abs(y - (y32d + lo) / 2), np.abs(y - (y32d + hi) / 2))
    nz = y != 0
    margin = d[nz] / np.spacing(np.abs(y[nz]))
    assert margin.min() >= 8, f"{name}: a float64 value {margin.min()} ulp from a midpoint"
    close = np.nonzero(nz)[0][margin < 64]
    assert close.size <= 5
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 200
    mf = getattr(mpmath, name)
    for i in close:  # y32 is the float32 nearest to the exact value
        exact = mf(mpmath.mpf(float(a[i])))
        dist = abs(exact - mpmath.mpf(float(y32[i])))
        assert dist < abs(exact - mpmath.mpf(float(lo[i])))
        assert dist < abs(exact - mpmath.mpf(float(hi[i])))


@pytest.fixture(scope="module")
def bm():
    from bionp import _random_kernels

    if not _random_kernels.available():
        pytest.skip("Numba is not installed (the [fast] extra)")
    from bionp import _box_muller

    return _box_muller


def test_kernel_log_equals_the_definition_on_every_argument(bm):
    got = np.empty_like(X)
    bm.log32_array(X, got)
    bad = np.nonzero(_bits(got) != _bits(definition("log")))[0]
    assert bad.size == 0, f"log32 differs at x = {X[bad[:5]]}"


def test_kernel_cos_sin_equal_the_definition_on_every_argument(bm):
    c, s = np.empty_like(THETA), np.empty_like(THETA)
    bm.sincos32_array(THETA, c, s)
    for name, got in (("cos", c), ("sin", s)):
        bad = np.nonzero(_bits(got) != _bits(definition(name)))[0]
        assert bad.size == 0, f"{name} differs at theta = {THETA[bad[:5]]}"


@pytest.mark.parametrize("mode, scale, loc, step", [(0, None, None, 4), (1, 0.3, None, 64),
                                                     (2, None, -1.5, 64), (2, 2.5, 0.25, 64)])
def test_kernel_normals_equal_the_array_code(bm, mode, scale, loc, step):
    """Whole pairs through :func:`bionp._box_muller.pairs32` (uniforms from raw words) and
    :func:`bionp.random._normal.transform`: every u1 (every ``step``-th with scale/loc)
    against a shuffle of the u2 (the transcendental steps on every argument: above)."""
    from bionp.random._normal import transform

    k = K[::step]
    words = (k.astype(np.uint32) << np.uint32(8)) | np.uint32(0x5A)  # low bits are dropped
    perm = np.random.default_rng(step).permutation(k.size)
    dt = np.float32
    consts = np.array([1, -2, dt(2 * np.pi), 1 if scale is None else scale,
                       0 if loc is None else loc], dtype=dt)
    zc, zs = np.empty(k.size, dt), np.empty(k.size, dt)
    bm.pairs32(words, words[perm], zc, zs, k.size, consts, mode)
    z = np.concatenate([U[::step], U[::step][perm]])
    transform(np, z, 0, k.size, k.size, None if scale is None else dt(scale),
              None if loc is None else dt(loc))
    assert np.array_equal(_bits(zc), _bits(z[:k.size]))
    assert np.array_equal(_bits(zs), _bits(z[k.size:]))
