"""Object-detection data: one in-memory form (:class:`DetDataset`), COCO / YOLO / VOC readers and writers,
conversion, validation and generated datasets."""

from vislab.data.detection.coco import read_coco, to_coco_dict, write_coco
from vislab.data.detection.convert import (
    FORMATS,
    convert,
    read_any,
    sniff_format,
    write_any,
)
from vislab.data.detection.core import DetDataset, DetImage, Issue, check, validate
from vislab.data.detection.synthetic import digits_detection, shapes_detection
from vislab.data.detection.voc import read_voc, write_voc
from vislab.data.detection.yolo import read_yolo, write_yolo

__all__ = [
    "FORMATS", "DetDataset", "DetImage", "Issue", "check", "convert", "digits_detection", "read_any", "read_coco", "read_voc", "read_yolo",
    "shapes_detection", "sniff_format", "to_coco_dict", "validate", "write_any", "write_coco", "write_voc", "write_yolo",
]
