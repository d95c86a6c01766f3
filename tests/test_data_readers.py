"""Readers: IDX (raw, gzip) and CIFAR-10 (python pickle, binary) on small real-format files."""

import gzip

import numpy as np
import pytest

from _data_files import (
    cifar_binary,
    cifar_py2_pickle,
    idx_bytes,
    images,
    labels,
    malicious_pickle,
    md5,
)
from bionp.data import ChecksumError, DataFormatError, UnsafePickleError
from bionp.data.cifar import read_cifar_binary_batch, read_cifar_python_batch, restricted_loads
from bionp.data.idx import parse_idx, read_idx, write_idx


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_images_and_labels(tmp_path, gz):
    imgs, labs = images(7), labels(7)
    sfx = ".gz" if gz else ""
    pi, pl = tmp_path / f"img{sfx}", tmp_path / f"lab{sfx}"
    pi.write_bytes(gzip.compress(idx_bytes(imgs)) if gz else idx_bytes(imgs))
    pl.write_bytes(gzip.compress(idx_bytes(labs)) if gz else idx_bytes(labs))
    got = read_idx(pi, md5=md5(idx_bytes(imgs)))
    assert got.dtype == np.uint8 and got.shape == (7, 28, 28)
    np.testing.assert_array_equal(got, imgs)
    np.testing.assert_array_equal(read_idx(pl), labs)


def test_idx_wider_dtypes_are_big_endian(tmp_path):
    a = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 1000
    p = tmp_path / "a.idx"
    p.write_bytes(idx_bytes(a, code=0x0C))
    got = read_idx(p)
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, a)
    f = np.linspace(-1, 1, 10, dtype=np.float32)
    write_idx(tmp_path / "f.idx.gz", f)  # bionp's own writer round-trips through the reader
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx.gz"), f)


def test_idx_wrong_magic(tmp_path):
    p = tmp_path / "bad-idx"
    p.write_bytes(b"\x00\x01\x08\x01" + b"\x00\x00\x00\x02" + b"ab")
    with pytest.raises(DataFormatError, match="not an IDX file.*magic"):
        read_idx(p)
    p.write_bytes(b"\x00\x00\x07\x01" + b"\x00\x00\x00\x02" + b"ab")  # unknown dtype code
    with pytest.raises(DataFormatError, match=str(p)):
        read_idx(p)


@pytest.mark.parametrize("cut", [1, 100, 28 * 28 * 3])
def test_idx_truncated_names_file(tmp_path, cut):
    data = idx_bytes(images(5))
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(data[:-cut])
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte: truncated IDX file"):
        read_idx(p)


def test_idx_overlong_and_short_header(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(idx_bytes(labels(5)) + b"\x00")
    with pytest.raises(DataFormatError, match="overlong"):
        read_idx(p)
    p.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataFormatError, match="truncated IDX header"):
        read_idx(p)
    with pytest.raises(DataFormatError, match="too short"):
        parse_idx(b"\x00\x00", "tiny")


def test_idx_truncated_gzip(tmp_path):
    p = tmp_path / "lab.gz"
    p.write_bytes(gzip.compress(idx_bytes(images(4)))[:-30])
    with pytest.raises(DataFormatError, match=r"lab\.gz: not a readable gzip file"):
        read_idx(p)


def test_idx_multi_member_gzip_and_garbage(tmp_path):
    data = idx_bytes(images(3))
    p = tmp_path / "two-members.gz"
    p.write_bytes(gzip.compress(data[:100]) + gzip.compress(data[100:]))
    np.testing.assert_array_equal(read_idx(p, md5=md5(data)), images(3))
    p.write_bytes(gzip.compress(data) + b"not gzip")
    with pytest.raises(DataFormatError, match="trailing garbage"):
        read_idx(p)


def test_idx_checksum_mismatch_names_expected_and_found(tmp_path):
    p = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = idx_bytes(labels(9))
    p.write_bytes(gzip.compress(data))
    with pytest.raises(
        ChecksumError,
        match=(
            f"t10k-labels-idx1-ubyte.gz: checksum mismatch: expected MD5 {'0' * 32}.*found"
            f" {md5(data)}"
        ),
    ):
        read_idx(p, md5="0" * 32)


def _cifar(n=6, seed=3):
    return images(n, (3 * 32 * 32,), seed=seed).reshape(n, 3072), labels(n)


def test_cifar_python_batch_as_official_files(tmp_path):
    data, labs = _cifar()
    p = tmp_path / "data_batch_1"
    p.write_bytes(cifar_py2_pickle(data, labs))
    x, y = read_cifar_python_batch(p, md5=md5(p.read_bytes()))
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.uint8
    np.testing.assert_array_equal(x.reshape(6, -1), data)
    np.testing.assert_array_equal(y, labs)


def test_cifar_python_batch_written_by_python3(tmp_path):
    import pickle

    data, labs = _cifar(4)
    for protocol in (2, 4, 5):
        p = tmp_path / f"b{protocol}"
        p.write_bytes(
            pickle.dumps({b"data": data, b"labels": [int(v) for v in labs]}, protocol=protocol)
        )
        x, y = read_cifar_python_batch(p)
        np.testing.assert_array_equal(x.reshape(4, -1), data)


def test_malicious_pickle_is_refused_before_running(tmp_path):
    sentinel = tmp_path / "pwned"
    p = tmp_path / "data_batch_1"
    p.write_bytes(malicious_pickle(sentinel))
    with pytest.raises(
        UnsafePickleError, match=r"data_batch_1: refused to unpickle: .*global os\.system"
    ):
        read_cifar_python_batch(p)
    assert not sentinel.exists()
    # builtins are refused too (eval, getattr, ...), and numpy callables outside the stand-ins
    for mod, name in (
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("numpy", "load"),
        ("subprocess", "Popen"),
    ):
        evil = b"\x80\x02c" + f"{mod}\n{name}\n".encode() + b"U\x011\x85R."
        with pytest.raises(UnsafePickleError, match=f"{mod}.{name}"):
            restricted_loads(evil, "evil")


def test_pickle_refuses_object_dtype_and_bad_layout(tmp_path):
    evil = b"\x80\x02cnumpy\ndtype\nU\x02O8K\x00K\x01\x87R."
    with pytest.raises(UnsafePickleError, match="dtype 'O8' refused"):
        restricted_loads(evil, "obj")
    p = tmp_path / "test_batch"
    p.write_bytes(b"\x80\x02]q\x00.")  # a list, not a dict
    with pytest.raises(DataFormatError, match="pickled dict"):
        read_cifar_python_batch(p)
    data, labs = _cifar(3)
    p.write_bytes(cifar_py2_pickle(data, labs)[:-200])
    with pytest.raises(DataFormatError, match="test_batch: not a readable pickled CIFAR-10 batch"):
        read_cifar_python_batch(p)
    p.write_bytes(cifar_py2_pickle(data, [1, 2, 11]))
    with pytest.raises(DataFormatError, match="labels outside"):
        read_cifar_python_batch(p)


def test_cifar_python_checksum(tmp_path):
    data, labs = _cifar(2)
    p = tmp_path / "data_batch_2"
    p.write_bytes(cifar_py2_pickle(data, labs))
    with pytest.raises(ChecksumError, match="data_batch_2: checksum mismatch"):
        read_cifar_python_batch(p, md5="f" * 32)


def test_cifar_binary_batch(tmp_path):
    data, labs = _cifar(5)
    p = tmp_path / "data_batch_1.bin"
    p.write_bytes(cifar_binary(data, labs))
    x, y = read_cifar_binary_batch(p, n_records=5)
    np.testing.assert_array_equal(x.reshape(5, -1), data)
    np.testing.assert_array_equal(y, labs)
    p.write_bytes(cifar_binary(data, labs)[:-1])
    with pytest.raises(DataFormatError, match=r"data_batch_1\.bin: .*truncated or overlong"):
        read_cifar_binary_batch(p)
    p.write_bytes(cifar_binary(data, labs))
    with pytest.raises(DataFormatError, match="10000 records"):
        read_cifar_binary_batch(p, n_records=10000)
