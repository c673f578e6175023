"""Checkpoint to ONNX: pinned opset, fixed tensor names, the model spec in ``metadata_props``.

Every graph is checked against :data:`TENSORRT_OPS`, the operators crackseg relies on that TensorRT's
ONNX parser supports (TensorRT 10 operator list); anything else fails the export rather than the
engine build on the vehicle.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import onnx
import torch
from torch import nn

from crackseg.edge.backends.base import INPUT_NAME, OUTPUT_NAME
from crackseg.edge.errors import CracksegError
from crackseg.edge.spec import SPEC_KEY, ModelSpec

__all__ = ["DEFAULT_OPSET", "TENSORRT_OPS", "ExportError", "embed_spec", "export_onnx", "op_counts"]

DEFAULT_OPSET = 17

TENSORRT_OPS = frozenset(
    {
        "Add",
        "Cast",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "DepthToSpace",
        "DequantizeLinear",
        "Div",
        "Equal",
        "Gather",
        "Identity",
        "InstanceNormalization",
        "MaxPool",
        "Mul",
        "Pad",
        "Pow",
        "QuantizeLinear",
        "ReduceMean",
        "ReduceSum",
        "Relu",
        "Reshape",
        "Resize",
        "Shape",
        "Sigmoid",
        "Slice",
        "Sqrt",
        "Sub",
        "Transpose",
        "Unsqueeze",
    }
)
"""ONNX operator types allowed in a crackseg graph: a subset of what TensorRT 10's ONNX parser supports."""


class ExportError(CracksegError):
    """The model cannot be exported as a TensorRT-compatible crackseg ONNX file."""


def op_counts(model: onnx.ModelProto) -> Counter[str]:
    """How often each operator type occurs in the main graph."""
    return Counter(node.op_type for node in model.graph.node)


def embed_spec(model: onnx.ModelProto, spec: ModelSpec) -> None:
    """Stores the spec as the ``crackseg_spec`` entry of ``metadata_props`` (replacing an older one)."""
    kept = [prop for prop in model.metadata_props if prop.key != SPEC_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=SPEC_KEY, value=spec.to_json())


def export_onnx(
    model: nn.Module,
    spec: ModelSpec,
    path: str | Path,
    input_size: tuple[int, int] = (512, 512),
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
) -> Path:
    """Exports ``model`` (in eval mode) to ``path``: ``image`` (Nx3xHxW) -> ``prob`` (Nx1xHxW).

    Args:
        input_size: (height, width) of the static shape, or of the trace input when ``dynamic``.
        dynamic: make batch, height and width dynamic (any multiple of ``spec.size_multiple``).
        simplify: fold constants and remove no-op nodes with onnxslim.
    """
    path = Path(path)
    height, width = input_size
    if height % spec.size_multiple or width % spec.size_multiple:
        raise ExportError(f"input size {height}x{width} is not a multiple of {spec.size_multiple}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer chatter
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, height, width),),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=False,
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes} if dynamic else None,
        )
    graph = onnx.load(str(path))
    if simplify:
        import onnxslim

        graph = onnxslim.slim(graph)
    unsupported = sorted(set(op_counts(graph)) - TENSORRT_OPS)
    if unsupported:
        raise ExportError(f"the exported graph uses operators outside the TensorRT allow-list: {unsupported}")
    embed_spec(graph, spec)
    onnx.checker.check_model(graph, full_check=True)
    onnx.save(graph, str(path))
    return path
