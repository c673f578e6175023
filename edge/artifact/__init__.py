"""The artifact contract, the bottom layer: what crosses every stage boundary, owned in one place.

``spec`` (the model spec, its per-variant config, the tensor names), ``manifest`` (the engine manifest),
``read`` (one ``read_spec(path)`` for checkpoints, ONNX files and engines), ``size`` (one ``Size`` type and
its ``WxH`` parser), ``precision`` (precision names), ``hashing`` (SHA-256 of files) and ``loaders``
(loaders of higher layers, registered by name). Imports nothing from crackseg but ``edge.errors``.
"""
