"""Dataset formats on disk: ImageFolder, CSV lists, CIFAR pickles, MNIST idx files (all generated here)."""

from __future__ import annotations

import gzip
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vislab.core.errors import DataError
from vislab.data.classify.source import DATASETS, DataConfig, load_dataset, sniff_format
from vislab.data.classify.formats._files import ImageDecoder, probe_image
from vislab.data.classify.formats.cifar import load_pickle
from vislab.data.classify.formats.mnist import FASHION_CLASSES, read_idx


def save(path: Path, mode: str = "RGB", size: tuple[int, int] = (7, 5), value: int | tuple = 100) -> Path:
    """Write a ``size`` = (W, H) image of one colour in PIL ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(np.full(size[::-1], value, dtype=np.uint16)).save(path)
    else:
        Image.new(mode, size, value).save(path)
    return path


def make_folder(root: Path, classes=("cat", "dog"), n: int = 3, mode: str = "RGB", size=(7, 5)) -> Path:
    for c in classes:
        for i in range(n):
            save(root / c / f"{i}.png", mode, size, (40 * i, 80, 120) if mode == "RGB" else 40 * i)
    return root


# --------------------------------------------------------------------------- imagefolder


def test_imagefolder_flat(tmp_path):
    root = make_folder(tmp_path / "pets", classes=("dog", "cat", "bird"))
    (root / "cat" / "notes.txt").write_text("not an image")
    s = DATASETS.build("imagefolder", cfg=DataConfig(), root=root)
    tr = s.train
    assert s.val is None and s.test is None
    assert tr.classes == ["bird", "cat", "dog"] and tr.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert not tr.in_memory and tr.size == (5, 7) and tr.channels == 3 and tr.augment == "standard" and tr.name == "pets"
    x = tr.get(4)
    assert x.shape == (3, 5, 7) and x.dtype == torch.uint8 and x[:, 0, 0].tolist() == [40, 80, 120]
    m = tr.materialize()
    assert m.images.shape == (9, 3, 5, 7)


def test_imagefolder_resizes_to_first_image_or_img_size(tmp_path):
    root = tmp_path / "d"
    save(root / "a" / "0.png", size=(6, 4))
    save(root / "a" / "1.png", size=(13, 9))
    save(root / "b" / "0.png", size=(3, 3))
    s = DATASETS.build("imagefolder", cfg=DataConfig(), root=root)
    assert s.train.size == (4, 6) and [tuple(s.train.get(i).shape) for i in range(3)] == [(3, 4, 6)] * 3
    s = DATASETS.build("imagefolder", cfg=DataConfig(img_size=9), root=root)
    assert s.train.size == (9, 9) and s.train.get(1).shape == (3, 9, 9)


def test_decoder_is_picklable():
    dec = ImageDecoder((4, 6), "L")
    assert pickle.loads(pickle.dumps(dec)) == dec


@pytest.mark.parametrize(
    ("mode", "value", "channels", "pixel"),
    [
        ("L", 77, 1, [77]),
        ("1", 1, 1, [255]),
        ("I;16", 65535, 1, [255]),
        ("LA", (50, 255), 1, [50]),
        ("RGBA", (10, 20, 30, 0), 3, [255, 255, 255]),  # transparent: composited on white
        ("P", 3, 3, None),
    ],
)
def test_imagefolder_modes(tmp_path, mode, value, channels, pixel):
    root = tmp_path / "m"
    for c in ("a", "b"):
        save(root / c / "0.png", mode, (5, 4), value)
    tr = DATASETS.build("imagefolder", cfg=DataConfig(), root=root).train
    x = tr.get(0)
    assert tr.channels == channels and x.shape == (channels, 4, 5) and x.dtype == torch.uint8
    if pixel is not None:
        assert x[:, 2, 3].tolist() == pixel


def test_imagefolder_mixed_gray_and_colour_is_rgb(tmp_path):
    root = tmp_path / "mix"
    save(root / "a" / "0.png", "L", value=90)
    save(root / "b" / "0.png", "RGB", value=(1, 2, 3))
    tr = DATASETS.build("imagefolder", cfg=DataConfig(), root=root).train
    assert tr.channels == 3 and tr.get(0)[:, 0, 0].tolist() == [90, 90, 90]


def bad_files(root: Path) -> list[str]:
    good = save(root / "a" / "good.png")
    (root / "a" / "garbage.png").write_bytes(b"this is not a png")
    (root / "b" / "empty.jpg").parent.mkdir(parents=True, exist_ok=True)
    (root / "b" / "empty.jpg").write_bytes(b"")
    (root / "b" / "cut.png").write_bytes(good.read_bytes()[:40])  # truncated
    save(root / "b" / "fine.png")
    return ["garbage.png", "empty.jpg", "cut.png"]


def test_corrupt_images_fail_naming_the_file(tmp_path):
    bad_files(tmp_path)
    with pytest.raises(DataError, match=r"garbage\.png.*expected a readable image"):
        DATASETS.build("imagefolder", cfg=DataConfig(), root=tmp_path)
    for name in ("empty.jpg", "cut.png"):
        assert isinstance(probe_image(str(tmp_path / "b" / name)), str)


def test_corrupt_images_skip_warns_and_drops(tmp_path):
    names = bad_files(tmp_path)
    with pytest.warns(UserWarning) as rec:
        tr = DATASETS.build("imagefolder", cfg=DataConfig(bad_images="skip"), root=tmp_path).train
    msgs = " ".join(str(w.message) for w in rec)
    assert all(n in msgs for n in names) and "skipped 3 unreadable image(s) of 5" in msgs
    assert len(tr) == 2 and sorted(Path(p).name for p in tr.paths) == ["fine.png", "good.png"]


def test_imagefolder_empty_class_and_no_classes(tmp_path):
    root = make_folder(tmp_path / "e")
    (root / "zebra").mkdir()
    with pytest.raises(DataError, match=r"expected at least one image in '.*zebra', got none"):
        DATASETS.build("imagefolder", cfg=DataConfig(), root=root)
    flat = tmp_path / "flat"
    save(flat / "x.png")
    with pytest.raises(DataError, match="expected one sub-folder of images per class.*1 loose image"):
        DATASETS.build("imagefolder", cfg=DataConfig(), root=flat)


def test_imagefolder_explicit_splits(tmp_path):
    root = tmp_path / "split"
    make_folder(root / "train", n=4)
    make_folder(root / "valid", n=2, size=(3, 3))
    make_folder(root / "test", n=1)
    s = load_dataset(DataConfig(data=str(root)))
    assert (len(s.train), len(s.val), len(s.test)) == (8, 4, 2)
    assert s.val.classes == s.train.classes == ["cat", "dog"]
    assert s.val.get(0).shape == (3, 5, 7)  # resized to the first training image's size
    make_folder(root / "test", classes=("cow",), n=1)
    with pytest.raises(DataError, match=r"'.*test': expected the classes of"):
        DATASETS.build("imagefolder", cfg=DataConfig(), root=root)


# --------------------------------------------------------------------------- csv


def test_csv_names_ints_split(tmp_path):
    make_folder(tmp_path / "img", n=2, mode="L")
    (tmp_path / "names.csv").write_text("path,label\nimg/cat/0.png,cat\nimg/dog/0.png,dog\nimg/cat/1.png,cat\n")
    s = DATASETS.build("csv", cfg=DataConfig(), root=tmp_path / "names.csv")
    assert s.train.classes == ["cat", "dog"] and s.train.labels.tolist() == [0, 1, 0] and s.train.channels == 1
    assert s.train.get(1).shape == (1, 5, 7)
    abs_path = tmp_path / "img" / "dog" / "1.png"
    (tmp_path / "ints.csv").write_text(f"label,path,split\n2,img/cat/0.png,train\n0,{abs_path},val\n1,img/dog/0.png,test\n0,img/cat/1.png,\n")
    s = DATASETS.build("csv", cfg=DataConfig(img_size=6), root=tmp_path / "ints.csv")
    assert s.train.classes == ["0", "1", "2"] and s.train.labels.tolist() == [2, 0]
    assert (len(s.val), len(s.test)) == (1, 1) and s.val.paths == [str(abs_path)] and s.test.size == (6, 6)


def test_csv_errors(tmp_path):
    make_folder(tmp_path, n=1)
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    cases = {
        "path,label\ncat/0.png,0\ndog/0.png,2\n": r"line 3 \('dog/0.png'\): expected a label an index in \[0, 1\].*got '2'",
        "path,label\ncat/0.png,cow\n": r"line 2 .*got 'cow'",
        "path,label\ncat/0.png,cat\ncat/9.png,cat\n": r"line 3: expected an image file at '.*9.png', got nothing",
        "file,class\ncat/0.png,cat\n": r"expected a header 'path,label\[,split\]'",
        "path,label,split\ncat/0.png,cat,holdout\n": r"line 2: expected split train, val or test, got 'holdout'",
    }
    for i, (text, msg) in enumerate(cases.items()):
        (tmp_path / f"{i}.csv").write_text(text)
        with pytest.raises(DataError, match=msg):
            DATASETS.build("csv", cfg=DataConfig(), root=tmp_path / f"{i}.csv")


# --------------------------------------------------------------------------- cifar


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int], key: bytes = b"labels") -> None:
    """Write one batch the way the official Python-2 pickles are laid out (bytes keys, protocol 2)."""
    d = {b"batch_label": b"testing batch 1 of 1", key: labels, b"data": data, b"filenames": [b"x.png"] * len(labels)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(d, protocol=2))


def cifar_rows(labels: list[int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)


def make_cifar10(root: Path) -> Path:
    d = root / "cifar-10-batches-py"
    for i in range(1, 6):
        write_cifar_batch(d / f"data_batch_{i}", cifar_rows([i % 10, 9], i), [i % 10, 9])
    row = np.zeros((1, 3072), np.uint8)
    row[0, :1024], row[0, 1024:2048], row[0, 2048:] = 10, 20, 30  # R, G, B planes
    row[0, 1] = 200  # R of row 0, column 1
    row[0, 1024 + 32] = 201  # G of row 1, column 0
    write_cifar_batch(d / "test_batch", row, [3])
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (d / "batches.meta").write_bytes(pickle.dumps({b"num_cases_per_batch": 2, b"label_names": names, b"num_vis": 3072}, protocol=2))
    return d


def test_cifar10_reader_and_pixel_order(tmp_path):
    d = make_cifar10(tmp_path)
    for root in (tmp_path, d):
        s = DATASETS.build("cifar10", cfg=DataConfig(), root=root)
        assert s.train.in_memory and s.train.images.shape == (10, 3, 32, 32) and len(s.test) == 1
        assert s.train.labels.tolist() == [1, 9, 2, 9, 3, 9, 4, 9, 5, 9] and s.train.classes[3] == "cat"
    first = cifar_rows([1, 9], 1)
    assert torch.equal(s.train.images[0], torch.from_numpy(first[0].reshape(3, 32, 32)))
    t = s.test.images[0]
    assert t[:, 5, 5].tolist() == [10, 20, 30] and t[0, 0, 1] == 200 and t[1, 1, 0] == 201
    assert DATASETS.build("cifar10", cfg=DataConfig(img_size=16), root=tmp_path).test.images.shape == (1, 3, 16, 16)


def test_cifar100_reader(tmp_path):
    d = tmp_path / "cifar-100-python"
    write_cifar_batch(d / "train", cifar_rows([0, 4, 2], 0), [0, 4, 2], key=b"fine_labels")
    write_cifar_batch(d / "test", cifar_rows([1], 1), [1], key=b"fine_labels")
    names = [b"apple", b"aquarium_fish", b"baby", b"bear", b"beaver"]
    (d / "meta").write_bytes(pickle.dumps({b"fine_label_names": names, b"coarse_label_names": [b"x"]}, protocol=2))
    s = load_dataset(DataConfig(data=str(tmp_path), val_split=0, test_split=0))
    assert s.train.name == "cifar100" and s.train.classes[4] == "beaver" and s.train.labels.tolist() == [0, 4, 2]
    assert s.test.images.shape == (1, 3, 32, 32)


def test_cifar_missing_files_and_unsafe_pickle(tmp_path):
    d = make_cifar10(tmp_path)
    (d / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"missing: data_batch_3.*--download"):
        DATASETS.build("cifar10", cfg=DataConfig(), root=tmp_path)
    with pytest.raises(DataError, match=r"cifar-100-python.*missing: train, test, meta.*--download"):
        DATASETS.build("cifar100", cfg=DataConfig(), root=tmp_path / "nothing")
    evil = tmp_path / "evil"
    evil.write_bytes(pickle.dumps(print))  # a global outside the allow-list
    with pytest.raises(DataError, match="not allowed"):
        load_pickle(evil)


# --------------------------------------------------------------------------- mnist


def idx_bytes(a: np.ndarray, magic: int | None = None, count: int | None = None) -> bytes:
    magic = magic if magic is not None else (0x801 if a.ndim == 1 else 0x803)
    dims = list(a.shape)
    dims[0] = count if count is not None else dims[0]
    return struct.pack(f">I{a.ndim}I", magic, *dims) + a.astype(np.uint8).tobytes()


def make_mnist(folder: Path, n_train: int = 5, n_test: int = 3, gz: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        files = {
            f"{prefix}-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n, 28, 28))),
            f"{prefix}-labels-idx1-ubyte": idx_bytes(np.arange(n) % 10),
        }
        for name, data in files.items():
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


def test_mnist_raw_and_gz_layouts(tmp_path):
    make_mnist(tmp_path / "flat")
    s = DATASETS.build("mnist", cfg=DataConfig(), root=tmp_path / "flat")
    assert s.train.images.shape == (5, 1, 28, 28) and s.train.channels == 1 and s.train.labels.tolist() == [0, 1, 2, 3, 4]
    assert s.train.classes == [str(i) for i in range(10)] and len(s.test) == 3 and s.train.augment == "light"
    raw = (tmp_path / "flat" / "train-images-idx3-ubyte").read_bytes()
    assert s.train.images[1, 0].flatten().tolist() == list(raw[16 + 784 : 16 + 2 * 784])
    make_mnist(tmp_path / "tv" / "MNIST" / "raw", gz=True)
    s2 = DATASETS.build("mnist", cfg=DataConfig(img_size=32), root=tmp_path / "tv")
    assert s2.train.images.shape == (5, 1, 32, 32)
    make_mnist(tmp_path / "fa" / "FashionMNIST" / "raw", gz=True)
    s3 = load_dataset(DataConfig(data=str(tmp_path / "fa"), val_split=0, test_split=0))
    assert s3.train.name == "fashion_mnist" and s3.train.classes == FASHION_CLASSES


def test_mnist_errors(tmp_path):
    with pytest.raises(DataError, match=r"expected the idx file 'train-images-idx3-ubyte'.*--download"):
        DATASETS.build("mnist", cfg=DataConfig(), root=tmp_path)
    p = tmp_path / "x"
    p.write_bytes(idx_bytes(np.zeros((2, 28, 28)), magic=0x801))
    with pytest.raises(DataError, match="expected magic number 0x00000803"):
        read_idx(p, 3)
    p.write_bytes(idx_bytes(np.zeros((2, 28, 28)), count=3))
    with pytest.raises(DataError, match=r"expected 2352 data bytes for shape \(3, 28, 28\), got 1568"):
        read_idx(p, 3)
    make_mnist(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte': expected one label per image .*\(3\), got 2"):
        DATASETS.build("mnist", cfg=DataConfig(), root=tmp_path / "m")


# --------------------------------------------------------------------------- sniffing


def test_load_dataset_sniffs_every_format(tmp_path):
    make_folder(tmp_path / "folder", n=10)
    (tmp_path / "list.csv").write_text("path,label\n" + "".join(f"folder/cat/{i}.png,cat\n" for i in range(10)))
    make_cifar10(tmp_path / "c10")
    make_mnist(tmp_path / "mn" / "raw", n_train=20)
    expect = {"folder": "imagefolder", "list.csv": "csv", "c10": "cifar10", "mn": "mnist"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path, fmt in expect.items():
            assert sniff_format(tmp_path / path) == fmt
            s = load_dataset(DataConfig(data=str(tmp_path / path), val_split=0.1, test_split=0.1 if fmt != "cifar10" else 0))
            assert len(s.train) > 0 and s.val is not None and s.test is not None


@pytest.mark.parametrize(
    "module",
    ["classify.formats._common", "classify.formats._files", "classify.formats.imagefolder", "classify.formats.csvlist", "classify.formats.mnist",
     "synthetic.digits", "synthetic.shapes"],
)
def test_doctests(module):
    import doctest
    import importlib

    res = doctest.testmod(importlib.import_module(f"vislab.data.{module}"))
    assert res.failed == 0 and res.attempted > 0


def test_registry_names():
    assert set(DATASETS.list()) >= {"imagefolder", "csv", "cifar10", "cifar100", "mnist", "fashion_mnist", "digits", "shapes"}
