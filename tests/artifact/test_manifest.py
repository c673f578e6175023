"""The engine manifest: round trip, every kind of mismatch, and missing or broken manifests."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from crackseg.edge.artifact.hashing import sha256_bytes, sha256_file
from crackseg.edge.artifact.manifest import (
    BuilderOptions,
    EngineManifest,
    ManifestError,
    ManifestMismatch,
    Profile,
    RuntimeInfo,
    check_manifest,
    manifest_path,
    read_manifest,
    rebuild_command,
    target_capability,
    write_manifest,
)
from crackseg.edge.artifact.spec import ModelSpec

ORIN = RuntimeInfo("tensorrt", "10.3.0", "Orin", (8, 7))
PROFILE = Profile(min=(1, 3, 64, 64), opt=(1, 3, 512, 512), max=(1, 3, 1024, 1024))
BUILDER = BuilderOptions(workspace_mib=1024, dla_core=None, strongly_typed=False, timing_cache="timing.cache")
ENGINE = b"serialized engine bytes"


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx bytes")
    return path


@pytest.fixture
def manifest(onnx_file: Path) -> EngineManifest:
    return EngineManifest(
        engine_sha256=sha256_bytes(ENGINE),
        onnx_sha256=sha256_file(onnx_file),
        onnx_path=str(onnx_file),
        precision="fp16",
        profile=PROFILE,
        builder=BUILDER,
        runtime=ORIN,
        spec=ModelSpec(arch="scnet-t", threshold=0.42),
        calibration_hash=None,
    )


def test_sha256_of_known_bytes(tmp_path: Path) -> None:
    # sha256("abc") from FIPS 180-2, appendix B.1.
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    (tmp_path / "abc").write_bytes(b"abc")
    assert sha256_bytes(b"abc") == expected
    assert sha256_file(tmp_path / "abc") == expected


def test_manifest_sits_beside_the_engine() -> None:
    assert manifest_path(Path("out/scnet-t.fp16.engine")) == Path("out/scnet-t.fp16.engine.json")


def test_round_trip_through_json_and_disk(tmp_path: Path, manifest: EngineManifest) -> None:
    assert EngineManifest.from_json(manifest.to_json()) == manifest
    engine = tmp_path / "model.engine"
    assert write_manifest(manifest, engine) == tmp_path / "model.engine.json"
    loaded = read_manifest(engine)
    assert loaded == manifest
    assert loaded.spec.threshold == 0.42
    assert loaded.profile.max == (1, 3, 1024, 1024)
    assert loaded.runtime.compute_capability == (8, 7)


def test_manifest_records_provenance(manifest: EngineManifest) -> None:
    raw = json.loads(manifest.to_json())
    assert raw["version"] == 1
    assert raw["created"].endswith("+00:00")  # UTC
    assert raw["crackseg_version"]
    assert raw["spec"]["arch"] == "scnet-t"


def test_a_matching_engine_has_no_differences(manifest: EngineManifest, onnx_file: Path) -> None:
    differences = check_manifest(
        manifest,
        runtime=ORIN,
        onnx_path=onnx_file,
        engine_sha256=sha256_bytes(ENGINE),
        precision="fp16",
        profile=PROFILE,
        builder=dataclasses.replace(BUILDER, timing_cache=None),  # the cache only speeds up builds
    )
    assert differences == []


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        (dataclasses.replace(ORIN, tensorrt_version="10.7.0"), "built with TensorRT 10.3.0, this machine has 10.7.0"),
        (
            dataclasses.replace(ORIN, tensorrt_module="tensorrt_rtx"),
            "built with tensorrt, this machine uses tensorrt_rtx",
        ),
        (
            dataclasses.replace(ORIN, gpu_name="Xavier"),
            "built for Orin (compute capability 8.7), this machine has Xavier",
        ),
        (dataclasses.replace(ORIN, compute_capability=(7, 2)), "this machine has Orin (compute capability 7.2)"),
    ],
)
def test_foreign_machine_is_named(manifest: EngineManifest, runtime: RuntimeInfo, expected: str) -> None:
    (difference,) = check_manifest(manifest, runtime=runtime)
    assert expected in difference


def test_an_ahead_of_time_engine_loads_on_its_target_gpus_only(manifest: EngineManifest) -> None:
    h100 = RuntimeInfo("tensorrt_rtx", "1.7.1", "NVIDIA H100 80GB HBM3", (9, 0))
    aot = dataclasses.replace(
        manifest, runtime=h100, builder=dataclasses.replace(BUILDER, rtx_targets=("SM89", "SM120"))
    )
    rtx_4090 = RuntimeInfo("tensorrt_rtx", "1.7.1", "NVIDIA GeForce RTX 4090", (8, 9))
    rtx_3090 = dataclasses.replace(rtx_4090, gpu_name="NVIDIA GeForce RTX 3090", compute_capability=(8, 6))
    assert check_manifest(aot, runtime=rtx_4090) == []
    (difference,) = check_manifest(aot, runtime=rtx_3090)
    assert (
        difference
        == "built ahead of time for SM89, SM120, this machine has NVIDIA GeForce RTX 3090 (compute capability 8.6)"
    )
    assert check_manifest(aot, runtime=h100) != []  # the build machine cannot run it ...
    assert check_manifest(aot, runtime=rtx_3090, loading=False) == []  # ... nor need it match to skip a rebuild


@pytest.mark.parametrize(("target", "capability"), [("SM75", (7, 5)), ("SM89", (8, 9)), ("SM120", (12, 0))])
def test_rtx_target_names_map_to_compute_capabilities(target: str, capability: tuple[int, int]) -> None:
    assert target_capability(target) == capability


def test_a_target_that_is_no_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="not a GPU architecture name"):
        target_capability("ada")


def test_changed_onnx_makes_the_engine_stale(manifest: EngineManifest, onnx_file: Path) -> None:
    onnx_file.write_bytes(b"retrained onnx bytes")
    (difference,) = check_manifest(manifest, runtime=ORIN, onnx_path=onnx_file)
    assert difference == f"{onnx_file} changed since the engine was built"


def test_missing_onnx_is_a_difference(manifest: EngineManifest, tmp_path: Path) -> None:
    (difference,) = check_manifest(manifest, runtime=ORIN, onnx_path=tmp_path / "gone.onnx")
    assert "is missing" in difference


def test_replaced_engine_is_detected(manifest: EngineManifest) -> None:
    (difference,) = check_manifest(manifest, runtime=ORIN, engine_sha256=sha256_bytes(b"another engine"))
    assert "not the one its manifest describes" in difference


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"precision": "int8"}, "precision fp16 -> int8"),
        ({"profile": dataclasses.replace(PROFILE, max=(1, 3, 2048, 2048))}, "1x3x2048x2048"),
        ({"builder": dataclasses.replace(BUILDER, workspace_mib=2048)}, "workspace mib 1024 -> 2048"),
        ({"builder": dataclasses.replace(BUILDER, dla_core=0)}, "dla core None -> 0"),
        ({"builder": dataclasses.replace(BUILDER, strongly_typed=True)}, "strongly typed False -> True"),
    ],
)
def test_different_build_request_is_named(manifest: EngineManifest, request_: dict, expected: str) -> None:
    (difference,) = check_manifest(manifest, runtime=ORIN, **request_)
    assert expected in difference


def test_all_differences_are_reported_together(manifest: EngineManifest) -> None:
    runtime = RuntimeInfo("tensorrt", "10.7.0", "RTX 4090", (8, 9))
    differences = check_manifest(manifest, runtime=runtime, precision="fp32")
    assert len(differences) == 3


def test_mismatch_message_names_engine_differences_and_hint(manifest: EngineManifest) -> None:
    error = ManifestMismatch(Path("m.engine"), ["a", "b"], hint="Rebuild it.")
    assert str(error) == "m.engine is stale or foreign: a; b. Rebuild it."
    assert error.differences == ["a", "b"]


def test_missing_manifest_is_refused_with_a_rebuild_hint(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"has no manifest .*--rebuild"):
        read_manifest(tmp_path / "model.engine")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "Expecting value"),
        ("[1, 2]", "not a JSON object"),
        ('{"version": 99}', "manifest version 99"),
        ('{"version": 1}', "missing fields"),
    ],
)
def test_broken_manifest_is_refused_naming_the_file(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "model.engine.json").write_text(text)
    with pytest.raises(ManifestError, match=reason) as info:
        read_manifest(tmp_path / "model.engine")
    assert "model.engine.json" in str(info.value)


def test_manifest_with_a_bad_spec_is_refused(tmp_path: Path, manifest: EngineManifest) -> None:
    raw = json.loads(manifest.to_json())
    raw["spec"]["version"] = 7
    (tmp_path / "model.engine.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestError, match="spec version 7"):
        read_manifest(tmp_path / "model.engine")


def test_rebuild_command_repeats_the_recorded_build(manifest: EngineManifest) -> None:
    assert rebuild_command(manifest, "m.engine") == (
        f"crackseg export engine --onnx {manifest.onnx_path} --precision fp16 --min-shape 1x3x64x64 "
        "--opt-shape 1x3x512x512 --max-shape 1x3x1024x1024 --workspace-mib 1024 --timing-cache timing.cache "
        "--out m.engine --rebuild"
    )


def test_rebuild_command_of_a_static_dla_engine(manifest: EngineManifest) -> None:
    shape = (1, 3, 384, 544)
    static = dataclasses.replace(
        manifest,
        profile=Profile(shape, shape, shape),
        builder=BuilderOptions(workspace_mib=512, dla_core=1, strongly_typed=True),
    )
    assert rebuild_command(static, "m.engine") == (
        f"crackseg export engine --onnx {manifest.onnx_path} --precision fp16 --workspace-mib 512 --dla-core 1 "
        "--out m.engine --rebuild"
    )
