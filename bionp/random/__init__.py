r"""bionp's random numbers: a counter-based Philox4x64-10 generator on ``xp``.

Every random draw in bionp comes from :class:`Generator`.  A counter-based
generator computes block :math:`i` of the stream as a pure function of the key
and the counter :math:`c_0 + i`,

.. math::

    (r_{4i}, r_{4i+1}, r_{4i+2}, r_{4i+3}) = \mathrm{Philox4x64\text{-}10}_k(c_0 + i),

so a draw of ``n`` numbers is one vectorised evaluation and needs no sequential
state, and the same seed gives the **same bits** on NumPy, on the strict
stand-in and on CuPy.  Seeding follows NumPy: ``Generator(s)`` produces exactly
the raw stream of NumPy's ``Philox`` bit generator seeded with ``s``.

The package holds these things, each in its module:

* :mod:`bionp.random.philox` — the counter core: :func:`philox4x64_10` (the
  ten rounds in 64-bit array arithmetic) and the blocks of a stream;
* :mod:`bionp.random.generator` — :class:`Generator` (seeding, state,
  ``spawn``, and the distributions: uniform, normal, laplace, integers,
  permutation, choice), :func:`default_rng`, :func:`check_rng`,
  :func:`named_stream`;
* :mod:`bionp.random.threads` — :func:`get_num_threads` /
  :func:`set_num_threads`: large draws on NumPy are filled by several threads,
  with the same numbers for any thread count;
* :mod:`bionp.random._arguments` — the checks of sizes, parameters and ``out=``
  buffers, all made before the counter moves;
* :mod:`bionp.random._normal` — Box–Muller as array code, the definition of the normals:
  float32 takes the correctly rounded float32 :math:`\ln`, :math:`\cos`, :math:`\sin` (the
  float64 value rounded once; exact on all :math:`2^{24}` arguments of each, checked
  exhaustively), so float32 normals are the same bits on every backend and CPU.

On NumPy with Numba, uniforms, normals and ±s values are computed by compiled kernels
(:mod:`bionp._random_kernels`) straight into the result or a caller's ``out=``
buffer, bit for bit the array code's numbers.
"""

from __future__ import annotations

from bionp.random.generator import Generator, check_rng, default_rng, named_stream
from bionp.random.philox import philox4x64_10
from bionp.random.threads import get_num_threads, set_num_threads

__all__ = ["Generator", "default_rng", "check_rng", "named_stream", "philox4x64_10",
           "get_num_threads", "set_num_threads"]
