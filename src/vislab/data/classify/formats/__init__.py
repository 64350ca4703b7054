"""Dataset formats on disk; importing this package registers their builders in ``DATASETS``."""

from vislab.data.classify.formats import cifar, csvlist, food101, imagefolder, mnist, pets  # noqa: F401
