"""Shared fixtures: every test taking ``xp`` runs on each available backend.

Backends: ``numpy``; ``strict`` (the CPU stand-in for a GPU, see tests/README.md);
``cupy`` when CuPy imports and sees a GPU (skipped with a reason otherwise).
"""

import os

import numpy as np
import pytest

import bionp as bnp

_CUPY = None
#: skip reasons of the backend fixtures below: the short summary (``-ra``) folds each into
#: one line for the whole run instead of one per test file and line (hundreds without a GPU)
NO_CUPY = "CuPy backend: CuPy not installed or no GPU visible"
NO_NUMBA = "Numba not installed (pip install bionp[fast])"
_FOLDED_SKIPS = (NO_CUPY, NO_NUMBA)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        for folded in _FOLDED_SKIPS:
            if reason.endswith(folded):  # "Skipped: <reason>"
                report.longrepr = (__file__, 1, f"{folded} (every test on that backend)")


def _cupy_ok():
    global _CUPY
    if _CUPY is None:
        _CUPY = bnp.available_backends().count("cupy") == 1
    return _CUPY


@pytest.fixture(params=["numpy", "strict", "cupy"])
def xp(request):
    """The array module of each backend, made active for the test's duration."""
    name = request.param
    if name == "cupy" and not _cupy_ok():
        pytest.skip(NO_CUPY)
    with bnp.backend(name) as module:
        yield module


@pytest.fixture(params=["numpy", "strict"])
def cpu_xp(request):
    """Only the CPU backends (for tests that compare against NumPy bit for bit)."""
    with bnp.backend(request.param) as module:
        yield module


@pytest.fixture(params=["compiled", "scipy"])
def host_kernels(request, monkeypatch):
    """The CPU kernels of bionp.backend's sparse products: Numba's (skipped without Numba)
    or SciPy's, selected through BIONP_NUMBA for the test's duration."""
    from bionp import _kernels

    if request.param == "compiled":
        monkeypatch.setenv("BIONP_NUMBA", "1")
        if not _kernels.available():
            pytest.skip(NO_NUMBA)
    else:
        monkeypatch.setenv("BIONP_NUMBA", "0")
    return request.param


@pytest.fixture(params=["compiled", "plain"])
def conv_kernels(request, monkeypatch):
    """The image layers' compiled kernels (bionp.backend_conv; skipped without Numba) or
    their plain array code, selected through BIONP_NUMBA for the test's duration."""
    from bionp import _conv_kernels

    if request.param == "compiled":
        monkeypatch.setenv("BIONP_NUMBA", "1")
        if not _conv_kernels.available():
            pytest.skip(NO_NUMBA)
    else:
        monkeypatch.setenv("BIONP_NUMBA", "0")
    return request.param


@pytest.fixture
def gpu_xp():
    """CuPy, or skip."""
    if not _cupy_ok():
        pytest.skip(NO_CUPY)
    with bnp.backend("cupy") as module:
        yield module


@pytest.fixture(autouse=True)
def _isolate_defaults():
    """Each test starts on NumPy/float32 and may change them freely."""
    with bnp.preserved_defaults(backend="numpy", dtype="float32"):
        yield


@pytest.fixture(scope="session")
def full_data_root():
    """Folder with the full Fashion-MNIST (BIONP_DATA), or skip."""
    root = os.environ.get("BIONP_DATA")
    if not root or not os.path.isdir(os.path.join(root, "fashion-mnist")):
        pytest.skip("full Fashion-MNIST not available (set BIONP_DATA)")
    return root
