"""Explicit INT8 quantization: a Q/DQ ONNX graph that TensorRT builds with ``int8=True`` and no calibrator.

Scheme (TensorRT's explicit quantization): INT8, symmetric, zero point 0 everywhere; convolution weights
per output channel (axis 0), stored as INT8 initializers behind a ``DequantizeLinear``; activations per
tensor, ``QuantizeLinear -> DequantizeLinear`` with scale ``amax / 127`` from :mod:`crackseg.calib.ranges`.

Placement: only convolutions are quantized, and only their inputs (activation and weight), as NVIDIA's
pytorch-quantization places them; biases, convolution outputs and every other operator stay in float, so
TensorRT fuses each ``DQ -> Conv`` into an INT8 convolution and keeps the rest at FP16/FP32.

Sensitive layers stay in float by default (:data:`DEFAULT_KEEP_FP32`, glob patterns over ONNX node names):
the edge prior and the first convolution block, which read raw pixels; and every single-channel branch
(attention gates, side reductions, enhancement fusion, side outputs and the final fuse conv). Those
branches carry the crack evidence itself at 1 channel, so INT8 saves almost nothing there and costs the
most accuracy.

Q/DQ insertion is ONNX Runtime's ``QDQQuantizer`` (the engine of ``quantize_static``), given the ranges
measured here; afterwards every node that is not a quantized convolution reads exactly the tensors it read
in the float model (ONNX Runtime shares one ``DequantizeLinear`` output among all consumers of a tensor).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import numpy as np
import onnx
from tqdm import tqdm

from crackseg.calib.ranges import DEFAULT_BINS, DEFAULT_PERCENTILE, METHODS, RangeObserver
from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.manifest import CALIBRATION_KEY
from crackseg.edge.artifact.metadata import set_onnx_metadata
from crackseg.edge.artifact.size import Size
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.export.onnx import TENSORRT_OPS, embed_spec, onnx_precision, op_counts

__all__ = [
    "CALIBRATION_KEY",
    "DEFAULT_KEEP_FP32",
    "QuantConfig",
    "QuantizationError",
    "calibration_info",
    "input_size",
    "quantize_qdq",
    "set_calibration_info",
    "split_convolutions",
]

"""``metadata_props`` key of the JSON record of how a Q/DQ model was calibrated (and gated)."""

DEFAULT_KEEP_FP32 = (
    "/prior/*",  # in-graph edge prior: fixed Sobel kernels, square root of small gradients
    "/encoder/blocks.0/convs/convs.0/*",  # first convolution: reads the pixels and the prior (SCNet)
    "/encoder/_conv_stem/*",  # the same on an EfficientNet-Lite trunk (scnet-e0, fpn-e0)
    "*/attention/gate/*",  # convolutions whose output becomes a sigmoid attention gate
    "*/attention/reduce/*",  # single-channel side feature of every block
    "/enhancement/*",  # enhancement encoder: 2 -> 1 fusion of side features
    "/head/*",  # side-output convolutions and the final fuse convolution
)
"""Node-name patterns (``fnmatch``) of the layers kept in float by default; see the module docstring.

They cover every architecture, so each applies where its layers exist; a pattern the user adds must match."""

_OP = "Conv"
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
_ORT_SHAPE_KEY = "onnx.infer"  # metadata ONNX Runtime adds while inferring shapes; not part of the artifact


class QuantizationError(CracksegError):
    """The model cannot be quantized as asked (no spec, bad patterns, no data, unsupported result)."""


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize.

    Args:
        method: calibration method, one of ``max``, ``entropy``, ``percentile`` (see :mod:`crackseg.calib.ranges`).
        percentile: percentile of ``|x|`` used by the ``percentile`` method.
        keep_fp32: node-name patterns of layers kept in float; each must match some node.
        bins: histogram bins per observed tensor (``entropy`` and ``percentile``).
    """

    method: str = "max"
    percentile: float = DEFAULT_PERCENTILE
    keep_fp32: tuple[str, ...] = DEFAULT_KEEP_FP32
    bins: int = DEFAULT_BINS

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise QuantizationError(f"unknown calibration method {self.method!r}; expected one of {', '.join(METHODS)}")
        if not 0 < self.percentile <= 100:
            raise QuantizationError(f"percentile must lie in (0, 100], got {self.percentile}")


def input_size(model: onnx.ModelProto) -> Size | None:
    """The input size of a static-shape model, ``None`` if its height or width is dynamic."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not (dims[2].HasField("dim_value") and dims[3].HasField("dim_value")):
        return None
    return Size(int(dims[2].dim_value), int(dims[3].dim_value))


def calibration_info(model: onnx.ModelProto) -> dict[str, Any] | None:
    """The calibration record of a Q/DQ model, or ``None`` for a float model."""
    for prop in model.metadata_props:
        if prop.key == CALIBRATION_KEY:
            info: dict[str, Any] = json.loads(prop.value)
            return info
    return None


def set_calibration_info(model: onnx.ModelProto, info: Mapping[str, Any]) -> None:
    """Stores ``info`` as the model's calibration record (replacing an older one)."""
    set_onnx_metadata(model, CALIBRATION_KEY, json.dumps(dict(info), sort_keys=True))


def split_convolutions(model: onnx.ModelProto, keep_fp32: Sequence[str]) -> tuple[list[str], list[str]]:
    """Names of the convolutions to quantize and of those kept in float, in graph order.

    Raises:
        QuantizationError: a pattern matches no node (with the closest node name as a hint).
    """
    names = [node.name for node in model.graph.node]
    for pattern in (pattern for pattern in keep_fp32 if pattern not in DEFAULT_KEEP_FP32):
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            close = get_close_matches(pattern, names, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise QuantizationError(f"keep-fp32 pattern {pattern!r} matches no node of the model{hint}")
    quantized: list[str] = []
    kept: list[str] = []
    for node in model.graph.node:
        if node.op_type == _OP:
            keep = any(fnmatch.fnmatchcase(node.name, pattern) for pattern in keep_fp32)
            (kept if keep else quantized).append(node.name)
    return quantized, kept


def quantize_qdq(
    model: onnx.ModelProto,
    spec: ModelSpec,
    feeds: Iterable[Mapping[str, np.ndarray]],
    config: QuantConfig = QuantConfig(),
    calibration: Mapping[str, Any] | None = None,
    total: int | None = None,
    progress: bool = True,
) -> onnx.ModelProto:
    """Calibrates ``model`` on ``feeds`` and returns its Q/DQ INT8 version (the input is not modified).

    Args:
        model: a float32 crackseg ONNX model, e.g. from :func:`crackseg.export.onnx.read_onnx`.
        spec: its model spec, carried into the quantized model.
        feeds: calibration inputs, e.g. :func:`crackseg.calib.data.calibration_feeds`.
        config: method and layers kept in float.
        calibration: extra facts for the calibration record (data hash, source model hash).
        total: number of feeds, for the progress bar.

    Returns:
        the quantized model: spec and calibration record in ``metadata_props``, checked, TensorRT operators only.
    """
    if onnx_precision(model) != "fp32":
        raise QuantizationError(f"only float32 models can be quantized, this one is {onnx_precision(model)}")
    quantized, kept = split_convolutions(model, config.keep_fp32)
    if not quantized:
        raise QuantizationError("every convolution is kept in float: there is nothing to quantize")
    targets = set(quantized)
    activations = sorted({node.input[0] for node in model.graph.node if node.name in targets})
    observers, samples = _observe(model, activations, feeds, config.bins, total, progress)
    ranges = {name: observer.amax(config.method, config.percentile) for name, observer in observers.items()}
    result = _insert_qdq(model, quantized, ranges)

    unsupported = sorted(set(op_counts(result)) - TENSORRT_OPS)
    if unsupported:
        raise QuantizationError(f"the quantized graph uses operators outside the TensorRT allow-list: {unsupported}")
    embed_spec(result, spec)
    record = {
        "method": config.method,
        **({"percentile": config.percentile} if config.method == "percentile" else {}),
        "samples": samples,
        "scheme": "int8 symmetric, zero point 0; per-channel conv weights (axis 0), per-tensor activations",
        "quantized_nodes": len(quantized),
        "keep_fp32": list(config.keep_fp32),
        "excluded_nodes": kept,
        "quantizer": f"onnxruntime {_ort_version()} QDQQuantizer",
        **(calibration or {}),
    }
    set_calibration_info(result, record)
    onnx.checker.check_model(result, full_check=True)
    return result


def _observe(
    model: onnx.ModelProto,
    tensors: Sequence[str],
    feeds: Iterable[Mapping[str, np.ndarray]],
    bins: int,
    total: int | None,
    progress: bool,
) -> tuple[dict[str, RangeObserver], int]:
    """Runs the float model on every feed, fetching only ``tensors``; returns their observers and the feed count."""
    import onnxruntime as ort

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {info.name: info.type.tensor_type.elem_type for info in inferred.graph.value_info}
    graph_inputs = {info.name for info in model.graph.input}
    fetched = [name for name in tensors if name not in graph_inputs]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    if fetched:  # only what is observed is computed; layers after the last quantized conv are pruned
        del probe.graph.output[:]
        probe.graph.output.extend(
            onnx.helper.make_tensor_value_info(name, types.get(name, onnx.TensorProto.FLOAT), None) for name in fetched
        )
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    observers = {name: RangeObserver(bins) for name in tensors}
    samples = 0
    for feed in tqdm(feeds, total=total, desc="calibrate", unit="crop", disable=not progress, leave=False):
        values = dict(zip(fetched, session.run(fetched, dict(feed)), strict=True)) if fetched else {}
        for name, observer in observers.items():
            try:
                observer.update(values[name] if name in values else feed[name])
            except ValueError as exc:
                raise QuantizationError(f"calibration sample {samples}: tensor {name!r}: {exc}") from exc
        samples += 1
    if not samples:
        raise QuantizationError("no calibration samples: the calibration set is empty")
    return observers, samples


def _insert_qdq(model: onnx.ModelProto, quantized: Sequence[str], ranges: Mapping[str, float]) -> onnx.ModelProto:
    """ONNX Runtime's Q/DQ insertion for the convolutions ``quantized``, with the given activation ``amax``."""
    from onnxruntime.quantization import CalibrationMethod, QDQQuantizer, QuantType, TensorsData

    source = onnx.ModelProto()
    source.CopyFrom(model)
    tensors_range = TensorsData(
        CalibrationMethod.MinMax, {name: (np.float32(-amax), np.float32(amax)) for name, amax in ranges.items()}
    )
    quantizer = QDQQuantizer(
        source,
        True,  # per-channel weights
        False,  # no reduced (7-bit) range
        QuantType.QInt8,
        QuantType.QInt8,
        tensors_range,
        list(quantized),
        [],
        [_OP],
        {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,  # TensorRT adds biases in float; an INT32 bias DQ is not an INT8 Q/DQ
            "OpTypesToExcludeOutputQuantization": [_OP],
            "DedicatedQDQPair": True,  # one pair per consuming conv, as TensorRT expects
        },
    )
    result: onnx.ModelProto = quantizer.quantize_model()
    _restore_float_inputs(result, model, set(quantized))
    quantizer.model.topological_sort()
    set_onnx_metadata(result, _ORT_SHAPE_KEY, None)
    return result


def _restore_float_inputs(result: onnx.ModelProto, original: onnx.ModelProto, quantized: set[str]) -> None:
    """Makes every node but the quantized convs read what it read in ``original``, re-adding dropped initializers."""
    before = {node.name: list(node.input) for node in original.graph.node}
    for node in result.graph.node:
        if node.name in quantized or node.op_type in _QDQ_OPS or node.name not in before:
            continue
        if list(node.input) != before[node.name]:
            del node.input[:]
            node.input.extend(before[node.name])
    available = {init.name for init in result.graph.initializer} | {info.name for info in result.graph.input}
    available |= {name for node in result.graph.node for name in node.output}
    needed = {name for node in result.graph.node for name in node.input if name}
    result.graph.initializer.extend(
        init for init in original.graph.initializer if init.name in needed and init.name not in available
    )


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)
