"""Dataset formats on disk; importing this package registers their builders in ``DATASETS``."""

from vislab.data.formats import cifar, csvlist, imagefolder, mnist  # noqa: F401
