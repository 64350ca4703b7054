"""Losses beyond cross-entropy: segmentation (Dice, focal, Tversky, Lovasz and weighted sums of them)."""
