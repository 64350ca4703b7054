"""Data, one subpackage per kind: ``classify/`` (labelled images: bundled, generated and on-disk formats),
``segment/`` (images + masks), ``detect/`` (boxes and instance masks: COCO / YOLO / VOC), ``synthetic/``
(generated shapes and digits); :mod:`vislab.data.base` holds what they share (the global-batch rule,
batch flip/translate, normalisation statistics, the common fields of a data section).
"""
