"""Object-detection data: one in-memory form (:class:`DetDataset`), COCO / YOLO / VOC readers and writers,
conversion, validation, generated datasets, and the resized splits (:class:`DetSplit`) and batches
(:class:`DetStream`) training uses."""

from vislab.data.detect.coco import read_coco, to_coco_dict, write_coco
from vislab.data.detect.convert import (
    FORMATS,
    convert,
    read_any,
    sniff_format,
    write_any,
)
from vislab.data.detect.core import DetDataset, DetImage, Issue, check, validate
from vislab.data.detect.synthetic import digits_detection, shapes_detection
from vislab.data.detect.split import DetDataConfig, DetSplit, from_dataset, load_splits
from vislab.data.detect.stream import DetBatch, DetStream
from vislab.data.detect.voc import read_voc, write_voc
from vislab.data.detect.yolo import read_yolo, write_yolo

__all__ = [
    "FORMATS", "DetBatch", "DetDataConfig", "DetDataset", "DetImage", "DetSplit", "DetStream", "Issue", "check", "from_dataset", "load_splits", "convert", "digits_detection", "read_any", "read_coco", "read_voc", "read_yolo",
    "shapes_detection", "sniff_format", "to_coco_dict", "validate", "write_any", "write_coco", "write_voc", "write_yolo",
]
