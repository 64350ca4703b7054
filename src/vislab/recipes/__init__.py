"""Task-generic procedures built on the tasks: hyper-parameter search (:mod:`~vislab.recipes.tune`) and the
learning-rate range test (:mod:`~vislab.recipes.lr_finder`). They may import tasks; tasks never import them."""
