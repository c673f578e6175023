"""crackseg export stage: ONNX export and TensorRT engines with manifests."""
