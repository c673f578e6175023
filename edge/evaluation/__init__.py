"""The evaluation core: dataset reader and committed splits, metrics, the binarization rule and the evaluator.

Torch-free and below the training layer, so training, export, calibration and the runtime score models
with the same code. Imports only the artifact contract and the runners.
"""
