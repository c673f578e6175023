"""What a loaded model declares about its input and output, checked against its spec and the geometry in use.

A model whose tensors disagree with its spec (a 1-channel input, a 3-channel output, a fixed 256x256
input fed 512x512 frames) would otherwise fail at the first frame with the backend's own error, or
worse, run and publish nonsense. These checks refuse it when the model loads, in one line that names
the model's value and the value it should have.

Shapes are ``NCHW``; an axis the model leaves dynamic is ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

from crackseg.edge.artifact.size import Size
from crackseg.edge.artifact.spec import INPUT_NAME, OUTPUT_NAME, ModelSpec
from crackseg.edge.backends.base import BackendError

__all__ = ["INPUT_DTYPES", "ModelSignature", "check_fixed_size", "check_signature"]

INPUT_DTYPES = ("float32", "float16")
"""Input element types a runner can feed (the preprocessed batch is float32, cast to float16 if needed)."""

Shape = tuple[int | None, ...]


def _format(shape: Shape) -> str:
    """``(None, 1, None, None)`` -> ``Nx1xHxW``: dynamic axes by their letter (``?`` unless 4-d)."""
    letters = "NCHW" if len(shape) == 4 else "?" * len(shape)
    return "x".join(letter if size is None else str(size) for letter, size in zip(letters, shape, strict=True))


@dataclass(frozen=True)
class ModelSignature:
    """The model's declared input and output tensors.

    Attributes:
        source: names the model in messages (its file).
        input_shape: declared ``NCHW`` shape of the input, ``None`` for dynamic axes.
        input_dtype: element type of the input (``float32``, ``float16``, ...).
        output_shape: declared ``NCHW`` shape of the output.
    """

    source: str
    input_shape: Shape
    input_dtype: str
    output_shape: Shape

    @property
    def fixed_size(self) -> Size | None:
        """The one input size the model accepts, or ``None`` if it accepts more."""
        height, width = self.input_shape[2:]
        return Size(height, width) if height is not None and width is not None else None


def check_signature(signature: ModelSignature, spec: ModelSpec) -> None:
    """Raises :class:`BackendError` when the model's tensors disagree with its spec."""
    source, inp, out = signature.source, signature.input_shape, signature.output_shape
    if len(inp) != 4:
        raise BackendError(f"{source}: input '{INPUT_NAME}' is {_format(inp)}, but the spec needs NCHW (4 axes)")
    if inp[1] is not None and inp[1] != spec.input_channels:
        raise BackendError(
            f"{source}: input '{INPUT_NAME}' has {inp[1]} channel(s) ({_format(inp)}), but its spec says "
            f"{spec.input_channels} ({spec.color_order})"
        )
    if signature.input_dtype not in INPUT_DTYPES:
        raise BackendError(
            f"{source}: input '{INPUT_NAME}' is {signature.input_dtype}, but the spec's normalized input is "
            f"{' or '.join(INPUT_DTYPES)}"
        )
    if len(out) != 4 or out[1] not in (1, None):
        raise BackendError(
            f"{source}: output '{OUTPUT_NAME}' is {_format(out)}, but its spec says Nx1xHxW ({spec.output})"
        )
    for axis, size_in, size_out in zip("HW", inp[2:], out[2:], strict=True):
        if None not in (size_in, size_out) and size_in != size_out:
            raise BackendError(
                f"{source}: output {axis} {size_out} differs from input {axis} {size_in}, but its spec says "
                f"{spec.output}"
            )


def check_fixed_size(signature: ModelSignature, network_input: Size | None) -> None:
    """Raises :class:`BackendError` when a fixed-size model would be fed another size.

    Args:
        signature: the model's tensors.
        network_input: the size every batch has (resized or tiled frames), ``None`` for native
            resolution, whose size follows the frames.
    """
    fixed = signature.fixed_size
    if fixed is None or fixed == network_input:
        return
    model = str(fixed)
    fed = "frames at native resolution" if network_input is None else str(Size(*network_input))
    raise BackendError(
        f"{signature.source}: the model's input is fixed at {model} (WxH), but it would be fed {fed}; "
        f"pass --size {model} or --tile {model}"
    )
