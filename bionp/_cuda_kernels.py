r"""CUDA kernels for CuPy: the generator's Philox blocks and the dendritic sparse products.

On CuPy the array code of :mod:`bionp.random.philox` evaluates Philox4x64-10 as
about two hundred elementwise launches (ten rounds of 64-bit products built from
32-bit pieces), and the dendritic layer's sparse products gather
``(rows, per_row, batch)`` temporaries.  This module holds one CUDA C source with

* ``philox_raw``: one thread per block, its four 64-bit words (integers, permutations);
* ``philox_uniform_{f32,f64}``: one thread per Philox block, writing that block's
  uniforms (float64: :math:`(r \gg 11)\,2^{-53}`, one per word; float32:
  :math:`(u \gg 8)\,2^{-24}`, two per word, low half first) straight into the
  caller's buffer, starting anywhere inside a block;
* ``box_muller_{f32,f64}``: the in-place transform of :meth:`bionp.random.Generator.normal`,
  :math:`r = \sqrt{-2\ln(1-u_1)}`, :math:`z = (r\cos 2\pi u_2,\ r\sin 2\pi u_2)`,
  then ``* scale`` and ``+ loc``, in the array code's order of operations (float32:
  :math:`\ln, \cos, \sin` in double, rounded to float);
* ``rows_matmul``, ``rows_matmul_t`` and ``rows_dot`` for :func:`bionp.kernels.sparse_rows_matmul`
  and :func:`bionp.kernels.sparse_rows_dot`: one thread per output element, summing in
  a fixed order (no atomics), so the result does not depend on scheduling.

It is compiled by CuPy (NVRTC) with ``--fmad=false``: no multiply-add is contracted,
so every operation rounds as the array code's separate launches do, and the kernels
give the array code's bits on the same GPU (uniforms and integers by construction;
normals because CUDA's ``log``/``sqrt``/``cos``/``sin`` are the functions CuPy's
ufuncs call).  float32 normals take the double ``log``/``cos``/``sin`` of the float
argument rounded to float, which on Box–Muller's domain is the correctly rounded value
(:mod:`bionp.random._normal`): **bit-identical to NumPy** as well; float64 normals agree
with NumPy to the few ulp of the two maths libraries, like the array code.  The same source compiles as host C++ (the macros at
its top), which the tests build with the system compiler to check the arithmetic
bit for bit on the CPU; ``nvcc --ptx`` checks that it is valid CUDA.

The array code stays the definition of the numbers and the fallback:
:mod:`bionp.kernels` calls these functions for CuPy arrays only.  This module never
imports CuPy: the array module comes in as ``xp``.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

__all__ = ["SOURCE", "OPTIONS", "philox_raw", "philox_uniform", "box_muller", "rows_matmul", "rows_dot"]

SOURCE = r"""
#if defined(__CUDACC__)
#define BIONP_KERNEL extern "C" __global__ void
#define BIONP_DEVICE __device__ __forceinline__ static
#define BIONP_FOR(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; \
                             i < (n); i += (long long)blockDim.x * gridDim.x)
#define BIONP_MULHI(a, b) __umul64hi((a), (b))
#else
#include <math.h>
#define BIONP_KERNEL extern "C" void
#define BIONP_DEVICE static inline
#define BIONP_FOR(i, n) for (long long i = 0; i < (n); ++i)
#define BIONP_MULHI(a, b) ((unsigned long long)(((unsigned __int128)(a) * (b)) >> 64))
#endif

typedef unsigned long long u64;

/* Philox4x64-10 of counter (c0, c1, c2, c3) + b (256-bit addition) under key (k0, k1). */
BIONP_DEVICE void bionp_philox(u64 c0, u64 c1, u64 c2, u64 c3, u64 b, u64 k0, u64 k1,
                               u64 *out) {
    u64 x0 = c0 + b;
    u64 carry = x0 < c0;
    u64 x1 = c1 + carry;
    carry = carry && x1 == 0;
    u64 x2 = c2 + carry;
    carry = carry && x2 == 0;
    u64 x3 = c3 + carry;
    for (int r = 0; r < 10; ++r) {
        if (r) {
            k0 += 0x9E3779B97F4A7C15ULL;
            k1 += 0xBB67AE8584CAA73BULL;
        }
        u64 hi0 = BIONP_MULHI(x0, 0xD2E7470EE14C6C93ULL), lo0 = x0 * 0xD2E7470EE14C6C93ULL;
        u64 hi1 = BIONP_MULHI(x2, 0xCA5A826395121157ULL), lo1 = x2 * 0xCA5A826395121157ULL;
        x0 = hi1 ^ x1 ^ k0;
        x1 = lo1;
        x2 = hi0 ^ x3 ^ k1;
        x3 = lo0;
    }
    out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

/* The raw words of blocks c + 0 ... c + n_blocks - 1, four per block. */
BIONP_KERNEL philox_raw(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3, long long n_blocks,
                        u64 *out) {
    BIONP_FOR(t, n_blocks) {
        bionp_philox(c0, c1, c2, c3, (u64)t, k0, k1, out + 4 * t);
    }
}

/* out[p] = uniform number (first_lane + p) of the blocks at counters c + 0, c + 1, ...
   (c = the generator's counter + 1 + the first block); one thread per block. */
BIONP_KERNEL philox_uniform_f64(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3,
                                long long first_lane, long long n, double *out) {
    long long n_blocks = (first_lane + n + 3) / 4;
    BIONP_FOR(t, n_blocks) {
        u64 w[4];
        bionp_philox(c0, c1, c2, c3, (u64)t, k0, k1, w);
        for (int lane = 0; lane < 4; ++lane) {
            long long p = t * 4 + lane - first_lane;
            if (p >= 0 && p < n) out[p] = (double)(w[lane] >> 11) * (1.0 / 9007199254740992.0);
        }
    }
}

BIONP_KERNEL philox_uniform_f32(u64 k0, u64 k1, u64 c0, u64 c1, u64 c2, u64 c3,
                                long long first_lane, long long n, float *out) {
    long long n_blocks = (first_lane + n + 7) / 8;
    BIONP_FOR(t, n_blocks) {
        u64 w[4];
        bionp_philox(c0, c1, c2, c3, (u64)t, k0, k1, w);
        for (int lane = 0; lane < 8; ++lane) {
            long long p = t * 8 + lane - first_lane;
            unsigned int u = (unsigned int)(lane & 1 ? w[lane >> 1] >> 32 : w[lane >> 1]);
            if (p >= 0 && p < n) out[p] = (float)(u >> 8) * (1.0f / 16777216.0f);
        }
    }
}

/* z[0:half] holds u1, z[half:2 half] u2; replaced by r cos(2 pi u2), r sin(2 pi u2). */
#define BIONP_BOX_MULLER(NAME, T, LOG, SQRT, COS, SIN)                                   \
BIONP_KERNEL NAME(long long half, T two_pi, int has_scale, T scale, int has_loc, T loc,  \
                  T *z) {                                                               \
    BIONP_FOR(i, half) {                                                                \
        T r = (T)1 - z[i];                                                              \
        r = LOG(r);                                                                     \
        r = r * (T)(-2);                                                                \
        r = SQRT(r);                                                                    \
        T angle = z[half + i] * two_pi;                                                 \
        T c = COS(angle), s = SIN(angle);                                               \
        c = c * r;                                                                      \
        s = s * r;                                                                      \
        if (has_scale) { c = c * scale; s = s * scale; }                                \
        if (has_loc) { c = c + loc; s = s + loc; }                                      \
        z[i] = c;                                                                       \
        z[half + i] = s;                                                                \
    }                                                                                   \
}
/* float32: the double functions of the float argument, rounded once: the correctly rounded
   float results on Box-Muller's domain (bionp.random._normal), whatever the double library */
BIONP_DEVICE float bionp_log_f32(float x) { return (float)log((double)x); }
BIONP_DEVICE float bionp_cos_f32(float x) { return (float)cos((double)x); }
BIONP_DEVICE float bionp_sin_f32(float x) { return (float)sin((double)x); }
BIONP_BOX_MULLER(box_muller_f32, float, bionp_log_f32, sqrtf, bionp_cos_f32, bionp_sin_f32)
BIONP_BOX_MULLER(box_muller_f64, double, log, sqrt, cos, sin)

/* Sparse matrix S (rows x n_cols) with S[k, idx[k, j]] = w[k, j]:
   rows_matmul:   out (rows, m)   = S D,   D (n_cols, m)
   rows_matmul_t: out (n_cols, m) = S^T E, E (rows, m), through the column order
                  perm (flat positions sorted by column) and col_ptr (n_cols + 1)
   rows_dot:      out (rows, per_row), out[k, j] = sum_b E[k, b] D[idx[k, j], b]   */
#define BIONP_SPARSE(SUFFIX, T)                                                         \
BIONP_KERNEL rows_matmul_##SUFFIX(long long rows, long long per_row, long long m,       \
                                  const T *w, const long long *idx, const T *D, T *out) { \
    BIONP_FOR(i, rows * m) {                                                            \
        long long k = i / m, c = i % m;                                                 \
        T acc = 0;                                                                      \
        for (long long j = 0; j < per_row; ++j)                                         \
            acc = acc + w[k * per_row + j] * D[idx[k * per_row + j] * m + c];          \
        out[i] = acc;                                                                   \
    }                                                                                   \
}                                                                                       \
BIONP_KERNEL rows_matmul_t_##SUFFIX(long long n_cols, long long per_row, long long m,   \
                                    const T *w, const long long *perm,                  \
                                    const long long *col_ptr, const T *E, T *out) {     \
    BIONP_FOR(i, n_cols * m) {                                                          \
        long long col = i / m, c = i % m;                                               \
        T acc = 0;                                                                      \
        for (long long p = col_ptr[col]; p < col_ptr[col + 1]; ++p)                     \
            acc = acc + w[perm[p]] * E[(perm[p] / per_row) * m + c];                    \
        out[i] = acc;                                                                   \
    }                                                                                   \
}                                                                                       \
BIONP_KERNEL rows_dot_##SUFFIX(long long rows, long long per_row, long long m,          \
                               const long long *idx, const T *D, const T *E, T *out) {  \
    BIONP_FOR(i, rows * per_row) {                                                      \
        long long k = i / per_row;                                                      \
        const T *d = D + idx[i] * m;                                                    \
        const T *e = E + k * m;                                                         \
        T acc = 0;                                                                      \
        for (long long b = 0; b < m; ++b) acc = acc + e[b] * d[b];                      \
        out[i] = acc;                                                                   \
    }                                                                                   \
}
BIONP_SPARSE(f32, float)
BIONP_SPARSE(f64, double)
"""

#: NVRTC options: no contraction into fused multiply-adds (each operation rounds as
#: in the array code's separate launches), IEEE division and square root.
OPTIONS = ("--fmad=false", "--prec-div=true", "--prec-sqrt=true")

_THREADS = 256
_MASK64 = (1 << 64) - 1
_modules: dict[Any, Any] = {}


def _kernel(xp: types.ModuleType, name: str):
    """The compiled kernel ``name`` for the current device (compiled once per device)."""
    device = xp.cuda.Device().id
    module = _modules.get(device)
    if module is None:
        module = _modules[device] = xp.RawModule(code=SOURCE, options=OPTIONS)
    return module.get_function(name)


def _launch(xp, name: str, n_threads: int, args: tuple) -> None:
    if n_threads <= 0:
        return
    blocks = min(-(-n_threads // _THREADS), 65535 * 8)
    _kernel(xp, name)((blocks,), (_THREADS,), args)


def _suffix(dtype) -> str:
    dt = np.dtype(dtype)
    if dt == np.float32:
        return "f32"
    if dt == np.float64:
        return "f64"
    raise TypeError(f"the CUDA kernels take float32 or float64 arrays, got {dt}")


def _counter_words(counter: int) -> list:
    c = int(counter) % (1 << 256)
    return [np.uint64((c >> (64 * j)) & _MASK64) for j in range(4)]


def _key_words(key: tuple[int, int]) -> tuple:
    return np.uint64(key[0] & _MASK64), np.uint64(key[1] & _MASK64)


def philox_raw(xp: types.ModuleType, key: tuple[int, int], counter: int, out) -> None:
    """Fill the contiguous uint64 array ``out`` (``4 * n_blocks`` words) with the blocks at
    counters ``counter + 1 …`` (one launch)."""
    n_blocks = int(out.shape[0]) // 4
    _launch(xp, "philox_raw", n_blocks,
            (*_key_words(key), *_counter_words(int(counter) + 1), np.int64(n_blocks), out))


def philox_uniform(xp: types.ModuleType, key: tuple[int, int], counter: int, out,
                   start: int = 0) -> None:
    """Fill the contiguous 1-D float array ``out`` with uniforms ``start, start + 1, …``
    of the stream whose first block is at ``counter + 1`` (one launch)."""
    per_block = 8 if np.dtype(out.dtype) == np.float32 else 4
    first_block, first_lane = divmod(int(start), per_block)
    n = int(out.shape[0])
    n_blocks = -(-(first_lane + n) // per_block)
    _launch(xp, "philox_uniform_" + _suffix(out.dtype), n_blocks,
            (*_key_words(key), *_counter_words(int(counter) + 1 + first_block),
             np.int64(first_lane), np.int64(n), out))


def box_muller(xp: types.ModuleType, z, half: int, scale=None, loc=None) -> None:
    """Turn ``z`` (1-D, ``u1`` in ``[0, half)``, ``u2`` in ``[half, 2 half)``) into normals
    in place, as :meth:`bionp.random.Generator.normal`; ``scale``/``loc`` scalars or
    ``None`` (one launch)."""
    dt = np.dtype(z.dtype)
    _launch(xp, "box_muller_" + _suffix(dt), int(half),
            (np.int64(half), dt.type(2 * np.pi), np.int32(scale is not None),
             dt.type(0 if scale is None else scale), np.int32(loc is not None),
             dt.type(0 if loc is None else loc), z))


def rows_matmul(xp: types.ModuleType, weights, indices, n_cols: int, dense,
                transpose: bool = False):
    r""":math:`S D` (or :math:`S^\top D`) for the sparse ``S`` of
    :func:`bionp.kernels.sparse_rows_matmul` (which checked the shapes), on the GPU,
    summed in a fixed order."""
    rows, per_row = weights.shape
    w = xp.ascontiguousarray(weights)
    idx = xp.ascontiguousarray(indices, dtype=xp.int64)
    other = xp.ascontiguousarray(dense, dtype=w.dtype)
    m = other.shape[1]
    suffix = _suffix(w.dtype)
    if not transpose:
        out = xp.empty((rows, m), dtype=w.dtype)
        _launch(xp, "rows_matmul_" + suffix, rows * m,
                (np.int64(rows), np.int64(per_row), np.int64(m), w, idx, other, out))
        return out
    flat = idx.reshape(-1)
    perm = xp.ascontiguousarray(xp.argsort(flat, kind="stable"), dtype=xp.int64)
    col_ptr = xp.zeros(n_cols + 1, dtype=xp.int64)
    col_ptr[1:] = xp.cumsum(xp.bincount(flat, minlength=n_cols))
    out = xp.empty((n_cols, m), dtype=w.dtype)
    _launch(xp, "rows_matmul_t_" + suffix, n_cols * m,
            (np.int64(n_cols), np.int64(per_row), np.int64(m), w, perm, col_ptr, other, out))
    return out


def rows_dot(xp: types.ModuleType, indices, dense, other):
    r""":math:`P_{kj} = \sum_b \mathrm{other}_{kb}\,\mathrm{dense}_{\mathrm{indices}_{kj},b}`
    (:func:`bionp.kernels.sparse_rows_dot`) on the GPU."""
    rows, per_row = indices.shape
    d = xp.ascontiguousarray(dense)
    e = xp.ascontiguousarray(other, dtype=d.dtype)
    out = xp.empty((rows, per_row), dtype=d.dtype)
    _launch(xp, "rows_dot_" + _suffix(d.dtype), rows * per_row,
            (np.int64(rows), np.int64(per_row), np.int64(d.shape[1]),
             xp.ascontiguousarray(indices, dtype=xp.int64), d, e, out))
    return out
