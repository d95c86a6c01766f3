"""Parameter counts, eigenvalues and weight plots of dendritic layers."""

import numpy as np
import pytest

import bionp as bnp
from bionp.dendritic import (
    DendriticLayer,
    calculate_eigenvalues,
    count_parameters,
    plot_dendritic_weights_full_model,
    plot_dendritic_weights_single_image,
    plot_eigenvalue_spectrum,
)
from bionp.dendritic.analysis import neuron_weight_map


def test_count_parameters_counts_synapses_not_masks(xp):
    layer = DendriticLayer(784, 10, 32, 23, rng=0)
    assert count_parameters(layer) == 7360 + 230 + 230 + 10  # not 230 * 784
    nobias = DendriticLayer(784, 10, 32, 23, bias=False, rng=0)
    assert count_parameters(nobias) == 7360 + 230

    class Dense:
        def __init__(self):
            self.W = xp.zeros((10, 10))
            self.b = xp.zeros(10)

        def params(self):
            return {"W": self.W, "b": self.b}

    class Net:
        layers = [layer, Dense()]

    assert count_parameters(Net()) == 7830 + 110
    assert count_parameters(xp.zeros((3, 4))) == 12
    with pytest.raises(TypeError, match="cannot count"):
        count_parameters("layer")


def test_eigenvalues_are_squared_singular_values(xp):
    g = bnp.random.Generator(0)
    W = g.normal(size=(5, 9), dtype="float64")
    ev = calculate_eigenvalues(W)
    sv = np.linalg.svd(bnp.asnumpy(W), compute_uv=False)
    np.testing.assert_allclose(ev, sv ** 2, rtol=1e-10)
    np.testing.assert_allclose(calculate_eigenvalues(W.T), sv ** 2, rtol=1e-10)  # smaller Gram
    assert np.all(np.diff(ev) <= 0)
    sq = g.normal(size=(4, 4), dtype="float64")
    eig = calculate_eigenvalues(sq, kind="eig")
    ref = np.linalg.eigvals(bnp.asnumpy(sq))
    np.testing.assert_allclose(np.sort(np.abs(eig)), np.sort(np.abs(ref)))
    with pytest.raises(ValueError, match="square"):
        calculate_eigenvalues(W, kind="eig")
    with pytest.raises(ValueError, match="kind"):
        calculate_eigenvalues(W, kind="svd")
    bad = bnp.asnumpy(W).copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        calculate_eigenvalues(bad)


def test_eigenvalues_of_a_dendritic_layer(xp):
    layer = DendriticLayer(49, 3, 5, 4, rng=1, dtype="float64")
    Wd = bnp.asnumpy(layer.dense_weights())
    assert Wd.shape == (12, 49) and np.count_nonzero(Wd) == 60
    np.testing.assert_allclose(calculate_eigenvalues(layer),
                               np.linalg.svd(Wd, compute_uv=False) ** 2, rtol=1e-10)
    soma = calculate_eigenvalues(layer, which="soma")
    sw = bnp.asnumpy(layer.soma_w)
    np.testing.assert_allclose(np.sort(soma), np.sort((sw ** 2).sum(axis=1)), rtol=1e-10)


def test_weight_maps_and_plots(xp, tmp_path):
    layer = DendriticLayer(49, 3, 5, 4, rng=1)
    wmap = neuron_weight_map(layer, 1)
    rows = slice(4, 8)
    assert np.isclose(wmap.sum(), bnp.asnumpy(layer.w[rows]).sum(), rtol=1e-5)
    assert np.count_nonzero(wmap) <= 20
    img = bnp.random.Generator(0).uniform(size=(49,))
    p1 = plot_dendritic_weights_single_image(layer, 1, image=img, path=tmp_path / "one.png")
    p2 = plot_dendritic_weights_full_model(layer, path=tmp_path / "all.png")
    p3 = plot_eigenvalue_spectrum({"dendrites": calculate_eigenvalues(layer),
                                   "soma": calculate_eigenvalues(layer, which="soma")},
                                  path=tmp_path / "eig.png")
    for p in (p1, p2, p3):
        with open(p, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="neuron must be in"):
        neuron_weight_map(layer, 3)
    with pytest.raises(ValueError, match="not a square image"):
        plot_dendritic_weights_full_model(DendriticLayer(10, 2, 3, 2, rng=0))
    with pytest.raises(ValueError, match="no eigenvalues"):
        plot_eigenvalue_spectrum({})


def test_import_bionp_dendritic_stays_light():
    import subprocess
    import sys

    code = ("import sys, bionp.dendritic; "
            "print(any(m in sys.modules for m in ('matplotlib', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
