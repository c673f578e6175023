"""Checkpoint to ONNX: pinned opset, fixed tensor names, the model spec in ``metadata_props``.

Every graph is checked against :data:`TENSORRT_OPS`, the operators crackseg relies on that TensorRT's
ONNX parser supports (TensorRT 10 operator list); anything else fails the export rather than the
engine build on the vehicle.

Only :func:`export_onnx` needs PyTorch (imported when called): reading, inspecting and converting
ONNX files works where only ``onnx`` is installed, e.g. on a Jetson that builds engines.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from crackseg.edge.artifact.errors import ArtifactError
from crackseg.edge.artifact.metadata import set_onnx_metadata
from crackseg.edge.artifact.precision import Precision
from crackseg.edge.artifact.read import load_onnx
from crackseg.edge.artifact.size import DEFAULT_INPUT_SIZE, Size
from crackseg.edge.artifact.spec import INPUT_NAME, OUTPUT_NAME, SPEC_KEY, ModelSpec

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DEFAULT_OPSET",
    "FP16_KEEP_FP32",
    "TENSORRT_OPS",
    "ExportError",
    "convert_to_fp16",
    "embed_spec",
    "export_onnx",
    "onnx_precision",
    "op_counts",
    "read_onnx",
]

DEFAULT_OPSET = 17

TENSORRT_OPS = frozenset(
    {
        "Add",
        "AveragePool",
        "BatchNormalization",
        "Cast",
        "Clip",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "ConvTranspose",
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
        "PRelu",
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


class ExportError(ArtifactError):
    """The model cannot be exported as a TensorRT-compatible crackseg ONNX file."""


def op_counts(model: onnx.ModelProto) -> Counter[str]:
    """How often each operator type occurs in the main graph."""
    return Counter(node.op_type for node in model.graph.node)


def embed_spec(model: onnx.ModelProto, spec: ModelSpec) -> None:
    """Stores the spec as the ``crackseg_spec`` entry of ``metadata_props`` (replacing an older one)."""
    set_onnx_metadata(model, SPEC_KEY, spec.to_json())


def export_onnx(
    model: nn.Module,
    spec: ModelSpec,
    path: str | Path,
    input_size: Size = DEFAULT_INPUT_SIZE,
    dynamic: bool = False,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
) -> Path:
    """Exports ``model`` (in eval mode) to ``path``: ``image`` (Nx3xHxW) -> ``prob`` (Nx1xHxW).

    Args:
        input_size: the size of the static shape, or of the trace input when ``dynamic``.
        dynamic: make batch, height and width dynamic (any multiple of ``spec.size_multiple``).
        simplify: fold constants and remove no-op nodes with onnxslim.
    """
    import torch

    path = Path(path)
    height, width = input_size
    if height % spec.size_multiple or width % spec.size_multiple:
        raise ExportError(f"input size {Size(height, width)} is not a multiple of {spec.size_multiple}")
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


def read_onnx(path: str | Path) -> tuple[onnx.ModelProto, ModelSpec]:
    """A crackseg ONNX file with its weights, and its spec (through :func:`~crackseg.edge.artifact.read.load_onnx`).

    Raises:
        SpecError: the file is missing, corrupt, or carries no valid crackseg spec.
        ExportError: it lacks the ``image`` -> ``prob`` signature.
    """
    path = Path(path)
    model, spec = load_onnx(path)
    inputs = [value.name for value in model.graph.input]
    outputs = [value.name for value in model.graph.output]
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise ExportError(f"{path} does not have the '{INPUT_NAME}' -> '{OUTPUT_NAME}' signature")
    return model, spec


def onnx_precision(model: onnx.ModelProto) -> Precision:
    """``int8`` for a Q/DQ graph, ``fp16`` for float16 weights, else ``fp32``: what a strongly typed build gets."""
    if {"QuantizeLinear", "DequantizeLinear"} & set(op_counts(model)):
        return "int8"
    if any(init.data_type == TensorProto.FLOAT16 for init in model.graph.initializer):
        return "fp16"
    return "fp32"


FP16_KEEP_FP32 = frozenset({"InstanceNormalization"})
"""Operators :func:`convert_to_fp16` leaves in float32: instance norm's variance of float16 activations
loses most of its precision (and overflows past 256), which a normalised network then amplifies."""

_FP32_INPUTS = {"Resize": (1, 2)}
"""Operator inputs that are float32 by the operator's definition (Resize's roi and scales)."""


def convert_to_fp16(model: onnx.ModelProto, keep_fp32: frozenset[str] = FP16_KEEP_FP32) -> onnx.ModelProto:
    """A copy of ``model`` with float16 weights and arithmetic but float32 ``image`` in and ``prob`` out.

    Float32 I/O keeps every runner's interface; the float16 interior is what TensorRT builds from when it
    only accepts strongly typed networks (TensorRT 11, TensorRT-RTX) and what ONNX Runtime runs as FP16.
    Operators in ``keep_fp32`` run in float32 between casts. Only the operators of :data:`TENSORRT_OPS` are
    handled; Q/DQ graphs are refused (they carry their own precision).
    """
    if onnx_precision(model) != "fp32":
        raise ExportError(f"only float32 graphs can be converted to float16, this one is {onnx_precision(model)}")
    model = onnx.shape_inference.infer_shapes(model)  # a copy, with every intermediate tensor's type
    graph = model.graph
    _hoist_constants(graph)
    float_tensors = {
        value.name
        for value in [*graph.value_info, *graph.input, *graph.output]
        if value.type.tensor_type.elem_type == TensorProto.FLOAT
    } | {init.name for init in graph.initializer if init.data_type == TensorProto.FLOAT}
    initializers = {init.name: init for init in graph.initializer}
    graph_inputs = {value.name for value in graph.input}
    graph_outputs = {value.name for value in graph.output}
    precisions: dict[str, set[int]] = {}  # float initializer -> the types its users need
    casts: dict[tuple[str, int], str] = {}  # (tensor, type) -> the tensor holding it in that type
    nodes: list[onnx.NodeProto] = []

    def cast(name: str, to: int, output: str) -> str:
        if (name, to) not in casts:
            casts[name, to] = output
            nodes.append(helper.make_node("Cast", [name], [output], to=to, name=f"{output}/Cast"))
        return casts[name, to]

    def typed(name: str, to: int) -> str:
        """The name of tensor ``name`` in type ``to``, adding a cast or a float32 weight copy if needed."""
        if name not in float_tensors:
            return name
        if name in initializers:
            precisions.setdefault(name, set()).add(to)
            return name if to == TensorProto.FLOAT16 else f"{name}__fp32"
        if name in graph_inputs:
            return name if to == TensorProto.FLOAT else cast(name, TensorProto.FLOAT16, f"{name}__fp16")
        return name if to == TensorProto.FLOAT16 else cast(name, TensorProto.FLOAT, f"{name}__fp32")

    for node in graph.node:
        keep = node.op_type in keep_fp32
        fp32_inputs = _FP32_INPUTS.get(node.op_type, ())
        node.input[:] = [
            typed(name, TensorProto.FLOAT if keep or index in fp32_inputs else TensorProto.FLOAT16)
            for index, name in enumerate(node.input)
        ]
        for attribute in node.attribute if not keep else ():
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.FLOAT16
            if node.op_type == "ConstantOfShape" and attribute.t.data_type == TensorProto.FLOAT:
                attribute.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attribute.t).astype(np.float16)))
        nodes.append(node)
        for index, name in enumerate(node.output):
            if name not in float_tensors:
                continue
            if keep and name not in graph_outputs:  # float32 result, float16 for its users
                node.output[index] = casts[name, TensorProto.FLOAT] = f"{name}__fp32"
                cast(node.output[index], TensorProto.FLOAT16, name)
            elif not keep and name in graph_outputs:  # float16 result, float32 for the caller
                node.output[index] = f"{name}__fp16"
                cast(node.output[index], TensorProto.FLOAT, name)
    for name, types in precisions.items():
        array = numpy_helper.to_array(initializers[name])
        if TensorProto.FLOAT in types:
            graph.initializer.append(numpy_helper.from_array(array, f"{name}__fp32"))
        if TensorProto.FLOAT16 in types:
            initializers[name].CopyFrom(numpy_helper.from_array(array.astype(np.float16), name))
        else:
            graph.initializer.remove(initializers[name])
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def _hoist_constants(graph: onnx.GraphProto) -> None:
    """Turns ``Constant`` nodes into initializers, so every constant is converted in one place."""
    kept = []
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            graph.initializer.append(
                numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t), node.output[0])
            )
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
