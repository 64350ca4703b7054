"""Detectors (localizer, R-CNN, yolo_tiny, torchvision's) and their post-processing; one interface:
``forward(x, targets)`` -> losses, ``forward(x)`` -> boxes / scores / labels (/ masks) per image."""
