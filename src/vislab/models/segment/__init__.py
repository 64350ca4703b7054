"""Segmentation networks (U-Net family, SegNet, FCN, DeepLab, PSPNet) and their building blocks (common)."""
