"""Tasks: each module knows its task (data, model, loss, metrics, predictions, pictures); nothing else does."""
