"""The training engine: one loop for every task (trainer.py), checkpoints, distributed helpers."""
