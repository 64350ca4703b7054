"""Image-classification data: :class:`~vislab.data.classify.source.ImageSource` splits from bundled, generated and
on-disk datasets (formats/), batch streams for the engine (stream), augmentation and test-time augmentation.

``load_dataset(DataConfig(...))`` gives train / val / test splits.
"""
