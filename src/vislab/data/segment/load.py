"""Which reader a segmentation dataset needs, and the splits it gives."""

from __future__ import annotations

from pathlib import Path

import torch

from vislab.data.segment.coco_voc import is_coco_root, read_coco_segmentation, read_voc_segmentation, voc_root
from vislab.data.segment.folder import read_mask_folder
from vislab.data.segment.source import SegDataConfig, SegSplits, generate_shapes_segmentation, holdout


def sniff_format(data: str) -> str:
    """``coco``, ``voc`` or ``folder`` from the layout of the folder ``data``."""
    root = Path(data).expanduser()
    if root.is_dir() and is_coco_root(root):
        return "coco"
    if root.is_dir() and voc_root(root) is not None:
        return "voc"
    return "folder"


def load_segmentation(cfg: SegDataConfig) -> SegSplits:
    """The splits of the dataset ``cfg.data`` (generated shapes, a mask folder, a COCO or a VOC layout)."""
    fmt = cfg.format
    if fmt == "auto":
        fmt = "shapes" if cfg.data == "shapes" else sniff_format(cfg.data)
    if fmt == "shapes":
        size = cfg.img_size or 32
        count = cfg.synth_count or 800
        k = cfg.synth_classes or 3
        train = generate_shapes_segmentation(count, k, size, seed=(0, 0x5E6))
        test = generate_shapes_segmentation(max(8, round(0.2 * count)), k, size, seed=(1, 0x5E6))
        train, val, _ = holdout(train, cfg.val_split, 0.0, cfg.split_seed)
        splits = SegSplits(train, val, test)
    elif fmt == "coco":
        splits = read_coco_segmentation(cfg)
    elif fmt == "voc":
        splits = read_voc_segmentation(cfg)
    else:
        splits = read_mask_folder(cfg)
    if cfg.limit and cfg.limit < len(splits.train):
        splits.train = splits.train.subset(torch.arange(cfg.limit))
    return splits
