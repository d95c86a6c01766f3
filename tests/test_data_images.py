"""bionp.data.images: NCHW loading and padding, per-channel standardisation, crop/flip."""

import numpy as np
import pytest

import bionp as bnp
from bionp import data

from _data_files import cifar_binary, isolate, md5, patch_files


def test_load_images_pads_fashion_mnist_to_32(xp):
    x, y = data.load_images("fashion-mnist-small", split="test", size=32)
    flat, y2 = data.load("fashion-mnist-small", split="test")
    assert tuple(x.shape) == (2000, 1, 32, 32) and x.dtype == np.float32
    xh = bnp.asnumpy(x)
    np.testing.assert_array_equal(xh[:, 0, 2:30, 2:30], bnp.asnumpy(flat).reshape(-1, 28, 28))
    assert not xh[:, :, :2].any() and not xh[:, :, 30:].any() and not xh[:, :, :, :2].any()
    np.testing.assert_array_equal(bnp.asnumpy(y), bnp.asnumpy(y2))
    x28, _ = data.load_images("fashion-mnist-small", split="test")
    assert tuple(x28.shape) == (2000, 1, 28, 28)
    for bad in (27, 31, 30.0, True):
        with pytest.raises(ValueError, match="size must be an int"):
            data.load_images("fashion-mnist-small", split="test", size=bad)


def test_cifar_images_from_files_in_the_real_format(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    md5s, test_pixels = {}, None
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        px = np.random.default_rng(i).integers(0, 256, (3, 3072), dtype=np.uint8)
        raw = cifar_binary(px, np.arange(3) % 10)
        (folder / (name + ".bin")).write_bytes(raw)
        md5s[name + ".bin"] = md5(raw)
        test_pixels = px
    patch_files(monkeypatch, "cifar10", md5s)
    x, y = data.load_images("cifar10", split="test", root=tmp_path, size=32)
    assert tuple(x.shape) == (3, 3, 32, 32)
    # channel planes as stored: red plane first, row-major
    np.testing.assert_array_equal(bnp.asnumpy(x) * 255, test_pixels.reshape(3, 3, 32, 32))
    xa = data.random_crop_flip(x, rng=0)
    assert tuple(xa.shape) == (3, 3, 32, 32)


def test_as_images_and_pad(xp):
    g = bnp.random.Generator(0)
    flat = g.normal(0, 1, (4, 48))
    x = data.as_images(flat, (3, 4, 4))
    assert tuple(x.shape) == (4, 3, 4, 4)
    np.testing.assert_array_equal(bnp.asnumpy(x), bnp.asnumpy(flat).reshape(4, 3, 4, 4))
    with pytest.raises(ValueError, match=r"cannot read x of shape \(4, 48\) as images of shape "
                                         r"\(1, 5, 5\)"):
        data.as_images(flat, (1, 5, 5))
    padded = data.pad_images(x, 2)
    assert tuple(padded.shape) == (4, 3, 8, 8)
    np.testing.assert_array_equal(bnp.asnumpy(padded)[:, :, 2:6, 2:6], bnp.asnumpy(x))
    assert float(bnp.to_scalar(xp.abs(padded).sum())) == pytest.approx(
        float(bnp.to_scalar(xp.abs(x).sum())))
    with pytest.raises(ValueError, match="pad must be an int >= 0"):
        data.pad_images(x, -1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        data.pad_images(flat, 1)


def test_standardize_channels_uses_training_statistics(xp):
    g = bnp.random.Generator(1)
    tr = g.normal(0, 1, (50, 3, 5, 5)) * xp.asarray(np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)) \
        + xp.asarray(np.array([0.5, -1.0, 4.0]).reshape(1, 3, 1, 1))
    te = g.normal(0, 1, (10, 3, 5, 5))
    a, b, stats = data.standardize_channels(tr, te)
    ah = bnp.asnumpy(a)
    np.testing.assert_allclose(ah.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(ah.std(axis=(0, 2, 3)), 1, rtol=1e-5)
    trh = bnp.asnumpy(tr)
    np.testing.assert_allclose(bnp.asnumpy(stats["mean"]), trh.mean(axis=(0, 2, 3)), rtol=1e-5)
    ref = (bnp.asnumpy(te) - trh.mean(axis=(0, 2, 3)).reshape(1, 3, 1, 1)) \
        / trh.std(axis=(0, 2, 3)).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(bnp.asnumpy(b), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="x_test has 2 channels, x_train 3"):
        data.standardize_channels(tr, te[:, :2])
    with pytest.raises(ValueError, match="stats are for"):
        data.apply_channel_stats(te[:, :2], stats)


def test_random_crop_flip_matches_a_loop_reference(xp):
    g = bnp.random.Generator(2)
    x = g.normal(0, 1, (16, 2, 6, 5))
    out = data.random_crop_flip(x, rng=7, pad=2)
    # the same draws, replayed, and an explicit per-sample crop
    r = bnp.random.Generator(7)
    dy = bnp.asnumpy(r.integers(0, 5, 16, xp=xp))
    dx = bnp.asnumpy(r.integers(0, 5, 16, xp=xp))
    fl = bnp.asnumpy(r.integers(0, 2, 16, xp=xp))
    padded = np.pad(bnp.asnumpy(x), ((0, 0), (0, 0), (2, 2), (2, 2)))
    ref = np.stack([padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 5] for i in range(16)])
    ref[fl == 1] = ref[fl == 1][..., ::-1]
    np.testing.assert_array_equal(bnp.asnumpy(out), ref)
    assert 0 < fl.sum() < 16 and len(set(dy.tolist())) > 1
    # no padding, no flip: the images themselves; same seed, same augmentation
    np.testing.assert_array_equal(bnp.asnumpy(data.random_crop_flip(x, rng=1, pad=0, flip=False)),
                                  bnp.asnumpy(x))
    np.testing.assert_array_equal(bnp.asnumpy(data.random_crop_flip(x, rng=3)),
                                  bnp.asnumpy(data.random_crop_flip(x, rng=3)))
    with pytest.raises(ValueError, match="pad must be an int >= 0"):
        data.random_crop_flip(x, rng=0, pad=-4)
