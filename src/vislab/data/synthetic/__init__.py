"""Generated and bundled datasets; importing this package registers their builders in ``DATASETS``."""

from vislab.data.synthetic import digits, identities, shapes  # noqa: F401
from vislab.data.synthetic.shapes import SHAPE_CLASSES, generate_shapes, masks_to_boxes

__all__ = ["SHAPE_CLASSES", "generate_shapes", "masks_to_boxes"]
