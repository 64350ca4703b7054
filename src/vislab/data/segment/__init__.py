"""Semantic-segmentation data: sources in memory, mask folders, COCO and Pascal VOC, generated shapes, batches.

``load_segmentation(SegDataConfig(...))`` gives train / val / test :class:`~vislab.data.segment.source.SegSource`
splits; :class:`~vislab.data.segment.stream.SegBatchStream` batches them for the engine.
"""

from vislab.data.segment.load import load_segmentation, sniff_format
from vislab.data.segment.source import (
    IGNORE_INDEX,
    SegDataConfig,
    SegSource,
    SegSplits,
    default_palette,
    generate_shapes_segmentation,
    holdout,
)
from vislab.data.segment.stream import JointAffineAugment, SegBatch, SegBatchStream

__all__ = ["IGNORE_INDEX", "JointAffineAugment", "SegBatch", "SegBatchStream", "SegDataConfig", "SegSource", "SegSplits",
           "default_palette", "generate_shapes_segmentation", "holdout", "load_segmentation", "sniff_format"]
