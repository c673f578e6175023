"""``crackseg run`` parses into one :class:`RunConfig`; the runtime assembles it without the command."""

from __future__ import annotations

import argparse
import dataclasses
import threading
from pathlib import Path

import pytest

from crackseg.edge.artifact.size import Size
from crackseg.edge.cli import run as run_command
from crackseg.edge.runtime.assembly import (
    OverlayConfig,
    PublishConfig,
    ReplayConfig,
    RunConfig,
    SerialConfig,
    assemble,
)
from crackseg.edge.runtime.pipeline import PipelineConfig


def _parse(*argv: str) -> RunConfig:
    parser = argparse.ArgumentParser(prog="crackseg run")
    run_command.add_args(parser)
    return run_command._config(parser.parse_args(argv))


def test_the_commands_defaults_are_the_configurations() -> None:
    assert _parse() == RunConfig()


def test_each_option_lands_in_its_part() -> None:
    config = _parse(
        "--backend", "replay", "--replay-ms", "7", "--tile", "64x32", "--topic", "t", "--frames", "3",
        "--serial", "loop://", "--serial-rate", "2", "--overlay", "out.mp4", "--odometry", "tcp://127.0.0.1:1",
        "--pipe-diameter", "0.6",
    )  # fmt: skip
    assert config.replay == ReplayConfig(latency_s=0.007, frames=16)
    assert config.mask.tile == Size(height=32, width=64)
    assert config.publish.topic == b"t"
    assert config.pipeline.max_frames == 3
    assert config.serial == SerialConfig("loop://", 115200, 2.0, optional=False)
    assert config.overlay == OverlayConfig("out.mp4")
    assert config.pose.odometry == "tcp://127.0.0.1:1" and config.pose.pipe_diameter_m == 0.6
    assert config.versions == {}  # library versions are looked up only for a recording


def test_a_configuration_runs_without_the_command(scnet_t_onnx: Path, endpoint: str) -> None:
    pytest.importorskip("zmq")
    pytest.importorskip("cv2")
    config = RunConfig(
        source="synthetic://?width=64&height=48&fps=0",
        model=scnet_t_onnx,
        pipeline=PipelineConfig(max_frames=3, log_every_s=0),
        publish=PublishConfig(bind=endpoint),
    )
    with assemble(config) as run:
        assert run.model == scnet_t_onnx and run.threshold == run.spec.threshold
        report = run.pipeline.run(threading.Event())
    assert report.metrics.published == 3


def test_the_runs_masks_follow_the_models_component_rule(scnet_t_onnx: Path, endpoint: str, tmp_path: Path) -> None:
    """A spec's min_component_px reaches the runtime: what is published is what the evaluator scored."""
    pytest.importorskip("zmq")
    onnx = pytest.importorskip("onnx")
    from crackseg.edge.artifact.read import read_spec
    from crackseg.export.onnx import embed_spec

    graph = onnx.load(str(scnet_t_onnx))
    embed_spec(graph, dataclasses.replace(read_spec(scnet_t_onnx), min_component_px=9))
    ruled = tmp_path / "ruled.onnx"
    onnx.save(graph, str(ruled))
    source = "synthetic://?width=64&height=48&fps=0"
    config = RunConfig(source=source, model=ruled, publish=PublishConfig(bind=endpoint))
    with assemble(config) as run:
        assert run.pipeline.postprocessor.min_component_px == 9
