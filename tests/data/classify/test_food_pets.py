"""Food-101, Oxford-IIIT Pets and Kaggle Dogs vs. Cats readers on tiny generated trees in their published layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from vislab.core.errors import DataError
from vislab.data.classify.source import DATASETS, DataConfig, load_dataset, sniff_format


def save(path: Path, value: int = 100, size: tuple[int, int] = (6, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 80, 120)).save(path)


# --------------------------------------------------------------------------- food101

FOOD = ("ramen", "apple_pie", "pho")  # classes.txt order, not sorted


def make_food(parent: Path, n_train: int = 4, n_test: int = 2) -> Path:
    base = parent / "food-101"
    train, test = [], []
    for c in FOOD:
        for i in range(n_train + n_test):
            save(base / "images" / c / f"{100 + i}.jpg", 20 * i)
            (train if i < n_train else test).append(f"{c}/{100 + i}")
    (base / "meta").mkdir()
    (base / "meta" / "classes.txt").write_text("\n".join(FOOD) + "\n")
    (base / "meta" / "train.txt").write_text("\n".join(train) + "\n")
    (base / "meta" / "test.txt").write_text("\n".join(test) + "\n")
    save(base / "images" / "pho" / "999.jpg")  # listed nowhere: ignored
    return base


@pytest.mark.parametrize("which", ["parent", "food-101"])
def test_food101_reads_meta_lists(tmp_path, which):
    base = make_food(tmp_path / "data")
    root = base.parent if which == "parent" else base
    s = DATASETS.build("food101", cfg=DataConfig(), root=root)
    assert s.train.classes == list(FOOD) and s.val is None
    assert s.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and s.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert s.train.paths[0].endswith("ramen/100.jpg") and not s.train.in_memory
    assert s.train.size == (4, 6) and s.train.channels == 3 and s.train.get(0).shape == (3, 4, 6)


def test_food101_sniffed_and_val_carved(tmp_path):
    base = make_food(tmp_path)
    assert sniff_format(tmp_path) == "food101" and sniff_format(base) == "food101"
    s = load_dataset(DataConfig(data=str(tmp_path), val_split=0.25))
    assert s.train.name == "food101" and (len(s.train), len(s.val), len(s.test)) == (9, 3, 6)


def test_food101_missing_meta_file(tmp_path):
    base = make_food(tmp_path)
    (base / "meta" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"meta/test\.txt"):
        DATASETS.build("food101", cfg=DataConfig(), root=tmp_path)
    (base / "meta" / "classes.txt").unlink()
    with pytest.raises(DataError, match=r"classes\.txt"):
        DATASETS.build("food101", cfg=DataConfig(), root=tmp_path)


def test_food101_listed_image_missing(tmp_path):
    base = make_food(tmp_path)
    (base / "images" / "pho" / "101.jpg").unlink()
    with pytest.raises(DataError, match=r"pho/101\.jpg"):
        DATASETS.build("food101", cfg=DataConfig(), root=tmp_path)


# --------------------------------------------------------------------------- pets

# (breed, class id, species): class ids deliberately not in alphabetical order of breed
BREEDS = (("Abyssinian", 1, 1), ("american_bulldog", 2, 2), ("Bengal", 3, 1))


def make_pets(root: Path, n_trainval: int = 3, n_test: int = 2) -> Path:
    tv, te = ["# Image CLASS-ID SPECIES BREED ID"], []
    for breed, cid, sp in BREEDS:
        for i in range(n_trainval + n_test):
            name = f"{breed}_{i + 1}"
            save(root / "images" / f"{name}.jpg", 30 * i)
            (tv if i < n_trainval else te).append(f"{name} {cid} {sp} {cid}")
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "trainval.txt").write_text("\n".join(tv) + "\n")
    (root / "annotations" / "test.txt").write_text("\n".join(te) + "\n")
    return root


def test_pets_breeds_by_class_id(tmp_path):
    root = make_pets(tmp_path / "pets")
    s = DATASETS.build("pets", cfg=DataConfig(), root=root)
    assert s.train.classes == ["Abyssinian", "american_bulldog", "Bengal"] and s.val is None
    assert s.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and s.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert s.train.paths[3].endswith("american_bulldog_1.jpg") and s.train.get(0).shape == (3, 4, 6)


def test_pets_species(tmp_path):
    root = make_pets(tmp_path / "pets")
    s = DATASETS.build("pets_species", cfg=DataConfig(), root=root)
    assert s.train.classes == ["cat", "dog"] and s.train.name == "pets_species"
    assert s.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0] and s.test.labels.tolist() == [0, 0, 1, 1, 0, 0]


def test_pets_sniffed_torchvision_parent(tmp_path):
    make_pets(tmp_path / "oxford-iiit-pet")
    assert sniff_format(tmp_path) == "pets" and sniff_format(tmp_path / "oxford-iiit-pet") == "pets"
    s = load_dataset(DataConfig(data=str(tmp_path), val_split=1 / 3))
    assert (len(s.train), len(s.val), len(s.test)) == (6, 3, 6) and s.train.classes[1] == "american_bulldog"


def test_pets_missing_annotation_file(tmp_path):
    root = make_pets(tmp_path)
    (root / "annotations" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"annotations/test\.txt"):
        DATASETS.build("pets", cfg=DataConfig(), root=root)


def test_pets_inconsistent_class_id(tmp_path):
    root = make_pets(tmp_path)
    with (root / "annotations" / "test.txt").open("a") as f:
        f.write("Bengal_1 1 1 1\n")
    with pytest.raises(DataError, match="Abyssinian"):
        DATASETS.build("pets", cfg=DataConfig(), root=root)


# --------------------------------------------------------------------------- cats_vs_dogs


def make_cats_dogs(root: Path, n: int = 5) -> Path:
    for i in range(n):
        save(root / "train" / f"cat.{i}.jpg", 10 * i)
        save(root / "train" / f"dog.{i + 10}.jpg", 10 * i)
    save(root / "test1" / "1.jpg")  # unlabelled Kaggle test set: ignored
    return root


def test_cats_vs_dogs(tmp_path):
    root = make_cats_dogs(tmp_path / "kaggle")
    (root / "train" / "readme.txt").write_text("not an image")
    for r in (root, root / "train"):
        s = DATASETS.build("cats_vs_dogs", cfg=DataConfig(), root=r)
        assert s.train.classes == ["cat", "dog"] and s.val is None and s.test is None
        assert s.train.labels.tolist() == [0] * 5 + [1] * 5 and s.train.paths[5].endswith("dog.10.jpg")


def test_cats_vs_dogs_sniffed_and_split(tmp_path):
    root = make_cats_dogs(tmp_path)
    assert sniff_format(root) == "cats_vs_dogs" and sniff_format(root / "train") == "cats_vs_dogs"
    s = load_dataset(DataConfig(data=str(root), val_split=0.2, test_split=0.2))
    assert (len(s.train), len(s.val), len(s.test)) == (6, 2, 2) and s.val.labels.tolist() == [0, 1]


def test_cats_vs_dogs_empty_folder(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match=r"cat\.<n>\.jpg"):
        DATASETS.build("cats_vs_dogs", cfg=DataConfig(), root=tmp_path)


def test_class_folders_named_cat_dog_stay_imagefolder(tmp_path):
    for c in ("cat", "dog"):
        save(tmp_path / "train" / c / "0.png")
        save(tmp_path / c / "0.png")
    assert sniff_format(tmp_path) == "imagefolder" and sniff_format(tmp_path / "train") == "imagefolder"
