"""benchmarks/dendritic.py: the reproduction of the original implementation keeps the
original's structure, and the script reports what its docstring promises."""

import json
import os
import subprocess
import sys

import numpy as np

import bionp as bnp
from bionp.dendritic import DendriticLayer

from _examples import ROOT, load_benchmark

SCRIPT = os.path.join(ROOT, "benchmarks", "dendritic.py")


def _load_script():
    return load_benchmark("dendritic")


def test_original_epoch_keeps_masks_and_learns():
    """The original's formulation: weights zero off the masks, 32 synapses per dendrite
    through resampling events, and a training loss that falls on a learnable task."""
    mod = _load_script()
    g = np.random.default_rng(0)
    x = g.random((2048, 784))
    labels = (x[:, :392].sum(axis=1) > x[:, 392:].sum(axis=1)).astype(np.int64)  # 2 classes
    x -= x.mean(axis=0)
    with bnp.default_dtype("float64"):
        layer = DendriticLayer(784, 10, 32, 23, rng=1)
    orig = mod._OriginalEpoch(layer, lr=0.004, steps_to_resample=4)
    mask0 = orig.mask.copy()
    for _ in range(3):
        orig.epoch(x, labels, 64)
    assert orig.p["W"].dtype == np.float64
    assert np.all(orig.mask.sum(axis=1) == 32)
    assert not np.array_equal(orig.mask, mask0)  # resampling moved synapses
    assert np.all(orig.p["W"][orig.mask == 0] == 0)
    assert np.all(orig.p["sW"][orig.soma_mask == 0] == 0)
    d = x @ orig.p["W"].T + orig.p["b"]  # training accuracy well above chance (0.5)
    d = np.where(d > 0, d, 0.1 * d)
    s = d @ orig.p["sW"].T + orig.p["sb"]
    h = np.where(s > 0, s, 0.1 * s)
    h = np.where(h > 0, h, 0.1 * h)
    pred = np.argmax(h @ orig.p["W2"].T + orig.p["b2"], axis=1)
    assert np.mean(pred == labels) > 0.7


def test_script_reports_every_model_and_ratio():
    out = subprocess.run(
        [sys.executable, SCRIPT, "--n", "768", "--batch-sizes", "128", "--repeats", "1",
         "--optimizer", "adam"],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT))
    doc = json.loads(out.stdout)
    row = doc["seconds_per_epoch"]["batch_128"]
    for name in ("dendritic", "dense_masked", "vanilla", "original_numpy",
                 "dendritic_sequential", "vanilla_sequential", "dense_masked_sequential"):
        assert row[name] > 0, name
    assert row["ratio_dendritic_vs_original"] == row["dendritic"] / row["original_numpy"]
    assert row["ratio_dendritic_vs_vanilla"] == row["dendritic"] / row["vanilla"]
    assert isinstance(doc["compiled_kernels"], bool)
    assert set(doc["resampling_event_seconds"]) == {"weakest", "probabilistic"}
