"""Any format to any other: ``read_any`` sniffs COCO / YOLO / VOC, ``write_any`` writes one.

Example:
    >>> sniff_format(Path("data.yaml"))
    'yolo'
"""

from __future__ import annotations

from pathlib import Path

from vislab.core.errors import DataError
from vislab.data.detect.coco import read_coco, write_coco
from vislab.data.detect.core import DetDataset
from vislab.data.detect.voc import read_voc, write_voc
from vislab.data.detect.yolo import read_yolo, write_yolo

FORMATS = ("coco", "yolo", "voc")


def sniff_format(path: Path) -> str:
    """``coco`` for a .json file (or a folder with annotations.json), ``yolo`` for a .yaml file (or a folder
    with data.yaml), ``voc`` for a folder with Annotations/."""
    if path.suffix == ".json":
        return "coco"
    if path.suffix in (".yaml", ".yml"):
        return "yolo"
    if (path / "annotations.json").is_file():
        return "coco"
    if (path / "data.yaml").is_file():
        return "yolo"
    if (path / "Annotations").is_dir():
        return "voc"
    raise DataError(f"detection data '{path}': expected a COCO .json, a YOLO data.yaml or a VOC folder with Annotations/, got none of these")


def read_any(path: str | Path, fmt: str = "auto", split: str = "train", masks: bool = False) -> DetDataset:
    """Read a detection dataset in any supported format."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"detection data '{p}': expected an existing file or folder, got nothing there")
    fmt = sniff_format(p) if fmt == "auto" else fmt
    if fmt == "coco":
        return read_coco(p / "annotations.json" if p.is_dir() else p, masks=masks)
    if fmt == "yolo":
        return read_yolo(p / "data.yaml" if p.is_dir() else p, split)
    if fmt == "voc":
        return read_voc(p)
    raise DataError(f"detection format: expected one of {FORMATS} or auto, got '{fmt}'")


def write_any(ds: DetDataset, out: str | Path, fmt: str, split: str = "train") -> Path:
    """Write ``ds`` to the folder ``out`` in ``fmt``; returns the file (or folder) to read it back from."""
    if fmt == "coco":
        return write_coco(ds, out)
    if fmt == "yolo":
        return write_yolo(ds, out, split)
    if fmt == "voc":
        return write_voc(ds, out)
    raise DataError(f"detection format: expected one of {FORMATS}, got '{fmt}'")


def convert(src: str | Path, dst: str | Path, to: str, fmt: str = "auto", split: str = "train") -> tuple[DetDataset, Path]:
    """Read ``src`` and write it as ``to`` into ``dst``; returns the dataset and what was written."""
    ds = read_any(src, fmt, split)
    return ds, write_any(ds, dst, to, split)
