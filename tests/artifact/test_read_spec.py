"""One reader for every artifact's spec, one error type, and the spec's input size and normalization."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.artifact.loaders import network_loader
from crackseg.edge.artifact.manifest import BuilderOptions, EngineManifest, Profile, RuntimeInfo, write_manifest
from crackseg.edge.artifact.read import read_spec
from crackseg.edge.artifact.size import DEFAULT_INPUT_SIZE, Size
from crackseg.edge.artifact.spec import SPEC_KEY, ModelSpec, SpecError

SPEC = ModelSpec(arch="scnet-t", threshold=0.37, input_size=Size(384, 544), pixel_mean=(1.0, 2.0, 3.0))


def _checkpoint(path: Path, metadata: dict[str, str]) -> Path:
    from safetensors.numpy import save_file

    save_file({"weight": np.zeros(2, np.float32)}, str(path), metadata=metadata)
    return path


def _onnx(path: Path, metadata: dict[str, str]) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["prob"])], "g", [value], [value])
    model = helper.make_model(graph)
    for key, text in metadata.items():
        model.metadata_props.add(key=key, value=text)
    onnx.save(model, str(path))
    return path


def _engine(path: Path, spec: ModelSpec) -> Path:
    path.write_bytes(b"engine")
    shape = (1, 3, 64, 64)
    manifest = EngineManifest(
        engine_sha256="0" * 64,
        onnx_sha256="0" * 64,
        onnx_path="model.onnx",
        precision="fp16",
        profile=Profile(shape, shape, shape),
        builder=BuilderOptions(workspace_mib=1024),
        runtime=RuntimeInfo("tensorrt", "10.3.0", "Orin", (8, 7)),
        spec=spec,
    )
    write_manifest(manifest, path)
    return path


@pytest.mark.parametrize("suffix", [".safetensors", ".onnx", ".engine"])
def test_every_artifact_kind_gives_back_the_spec_it_carries(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    if suffix == ".safetensors":
        _checkpoint(path, {SPEC_KEY: SPEC.to_json()})
    elif suffix == ".onnx":
        _onnx(path, {SPEC_KEY: SPEC.to_json()})
    else:
        _engine(path, SPEC)
    assert read_spec(path) == SPEC


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("model.safetensors", b"\x00" * 64, "is not a safetensors checkpoint"),
        ("model.onnx", b"not protobuf at all \xff\xff", "is not a readable ONNX file"),
        ("model.engine", b"engine", r"has no manifest \(model\.engine\.json is missing\)"),
        ("model.pt", b"", r"cannot tell what 'model\.pt' is: expected one of \.safetensors, \.onnx"),
        ("missing.safetensors", None, "checkpoint not found"),
        ("missing.onnx", None, "ONNX file not found"),
        ("missing.engine", None, "engine file not found"),
    ],
)
def test_every_bad_artifact_raises_the_one_spec_error(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(SpecError, match=message):
        read_spec(tmp_path / name)


@pytest.mark.parametrize("suffix", [".safetensors", ".onnx"])
def test_a_foreign_or_broken_spec_names_the_file(tmp_path: Path, suffix: str) -> None:
    make = _checkpoint if suffix == ".safetensors" else _onnx
    foreign = make(tmp_path / f"foreign{suffix}", {"author": "someone"})
    with pytest.raises(SpecError, match=rf"foreign\{suffix} is not a crackseg model"):
        read_spec(foreign)
    broken = make(tmp_path / f"broken{suffix}", {SPEC_KEY: json.dumps({"arch": "x", "version": 7})})
    with pytest.raises(SpecError, match=rf"broken\{suffix}: model spec version 7 is not supported"):
        read_spec(broken)


def test_the_input_size_survives_json_and_old_specs_get_the_default() -> None:
    assert ModelSpec.from_json(SPEC.to_json()).input_size == Size(height=384, width=544)
    old = json.loads(ModelSpec(arch="scnet-t").to_json())
    del old["input_size"]
    assert ModelSpec.from_json(json.dumps(old)).input_size == DEFAULT_INPUT_SIZE == Size(512, 512)


def test_only_registered_suffixes_have_a_network_loader() -> None:
    with pytest.raises(SpecError, match=r"no network loader for 'model\.onnx'"):
        network_loader("model.onnx")


def test_every_bad_artifact_error_is_one_family() -> None:
    """Whichever path reads a bad file (spec reader, runner, exporter, checkpoint loader), one base catches it."""
    pytest.importorskip("torch")
    from crackseg.edge.artifact.errors import ArtifactError
    from crackseg.edge.artifact.manifest import ManifestError
    from crackseg.edge.backends.base import BackendError
    from crackseg.export.onnx import ExportError
    from crackseg.train.checkpoint import CheckpointError

    for error in (SpecError, ManifestError, BackendError, ExportError, CheckpointError):
        assert issubclass(error, ArtifactError), error
