"""crackseg edge runtime: sources, backends, pipeline and links to the vehicle controller.

Importable without torch or TensorRT: heavy dependencies are imported by the module that uses them.
"""
