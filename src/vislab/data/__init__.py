"""Datasets: formats on disk, bundled and synthetic data, and the batch streams the engine consumes.

``load_dataset(DataConfig(...))`` gives train / val / test :class:`~vislab.data.base.ImageSource` splits.
"""
