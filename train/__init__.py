"""crackseg training stage: models, losses, data, the training loop and the evaluator.

Importing this package does not import torch; its submodules do where they need it.
"""
