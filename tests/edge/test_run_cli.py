"""``crackseg run`` and ``crackseg listen`` end to end: torch-free, two processes, signals, clear errors."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from crackseg.edge.cli.main import main
from crackseg.edge.report.recording import read_recording
from crackseg.edge.runtime.sinks.publish_zmq import ZmqPublisher
from crackseg.edge.runtime.sinks.record import load_mask
from crackseg.edge.runtime.stats import StatsMode, crack_stats

pytest.importorskip("zmq")
pytest.importorskip("cv2")

SMALL = "synthetic://?width=64&height=48&fps=0"


def test_run_works_without_torch(scnet_t_onnx: Path, endpoint: str, crackseg_command: Callable[..., list[str]]) -> None:
    command = crackseg_command(
        "run", "--model", str(scnet_t_onnx), "--source", SMALL, "--frames", "5", "--bind", endpoint
    )
    assert 'sys.modules["torch"] = None' in command[2]  # importing torch anywhere would raise ImportError
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "frame limit" in result.stderr and "published=5" in result.stderr


def test_run_with_listen_prints_every_frame_and_finishes(
    scnet_t_onnx: Path, endpoint: str, crackseg_command: Callable[..., list[str]]
) -> None:
    # The default send high-water mark (2) may drop a message when the 2 shared cores are busy: latest-value
    # semantics. A deeper queue makes "every frame arrives" a fair assertion.
    command = crackseg_command("run", "--model", str(scnet_t_onnx), "--source", SMALL, "--frames", "8", "--listen",
                               "--bind", endpoint, "--sndhwm", "50")  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [int(line.split()[3]) for line in lines] == list(range(8))  # "seq N  frame F  latency ..."
    assert all("coverage" in line and "skeleton" in line and "max width" in line for line in lines)


def test_listen_in_another_process_then_sigterm_shuts_down_cleanly(
    scnet_t_onnx: Path, endpoint: str, tmp_path: Path, crackseg_command: Callable[..., list[str]]
) -> None:
    listener = subprocess.Popen(
        crackseg_command("listen", "--connect", endpoint, "--count", "3", "--timeout", "60", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runtime = subprocess.Popen(
        crackseg_command("run", "--model", str(scnet_t_onnx), "--source", "synthetic://?width=64&height=48&fps=20",
                  "--bind", endpoint, "--record", str(tmp_path / "rec.db"), "--log-every", "0.5"),
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        out, err = listener.communicate(timeout=90)
        assert listener.returncode == 0, err
        assert runtime.poll() is None  # endless source: still running
        runtime.send_signal(signal.SIGTERM)
        _, log = runtime.communicate(timeout=30)
    finally:
        listener.kill()
        runtime.kill()
    frames = [json.loads(line) for line in out.splitlines()]
    assert len(frames) == 3
    for frame in frames:
        assert frame["width"] == 64 and frame["height"] == 48 and frame["encoding"] == "packbits"
        assert 0 <= frame["latency_ms"] < 10_000 and frame["source_id"].startswith("synthetic://")
        assert {"seq", "coverage_pct", "components", "skeleton_px", "max_width_px", "boxes"} <= frame.keys()
    assert runtime.returncode == 0, log
    assert "stopped after" in log and "fps | latency ms p50/p95/p99" in log  # final and periodic metrics
    with sqlite3.connect(tmp_path / "rec.db") as con:  # flushed on the way out
        assert con.execute("SELECT COUNT(*) FROM frames").fetchone()[0] > 0


def test_curve_listener_with_the_server_key_hears_what_a_plain_one_cannot(
    scnet_t_onnx: Path, endpoint: str, tmp_path: Path, crackseg_command: Callable[..., list[str]]
) -> None:
    import zmq.auth

    public, secret = zmq.auth.create_certificates(str(tmp_path), "server")
    keyed = subprocess.Popen(
        crackseg_command("listen", "--connect", endpoint, "--count", "2", "--timeout", "60", "--curve-server-key",
                         public),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runtime = subprocess.Popen(
        crackseg_command("run", "--model", str(scnet_t_onnx), "--source", "synthetic://?width=64&height=48&fps=20",
                         "--bind", endpoint, "--curve-secret-key", secret, "--duration", "60"),
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        keyed_out, keyed_err = keyed.communicate(timeout=90)
        assert keyed.returncode == 0, keyed_err
        assert len(keyed_out.splitlines()) == 2
        # The runtime is publishing now (heartbeats at least every second): a listener without the key hears nothing.
        plain = subprocess.run(
            crackseg_command("listen", "--connect", endpoint, "--timeout", "2.5"),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert runtime.poll() is None
    finally:
        runtime.send_signal(signal.SIGTERM)
        keyed.kill()
        runtime.communicate(timeout=30)
    assert plain.returncode == 1 and plain.stdout == "" and "nothing received" in plain.stderr


def test_sigint_exits_130_after_a_clean_shutdown(
    scnet_t_onnx: Path, endpoint: str, crackseg_command: Callable[..., list[str]]
) -> None:
    runtime = subprocess.Popen(
        crackseg_command("run", "--model", str(scnet_t_onnx), "--source", SMALL, "--bind", endpoint),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        assert runtime.stderr is not None
        for line in runtime.stderr:  # wait until frames flow
            if "publishing masks" in line:
                break
            assert time.monotonic() < deadline
        time.sleep(1.0)
        runtime.send_signal(signal.SIGINT)
        _, log = runtime.communicate(timeout=30)
    finally:
        runtime.kill()
    assert runtime.returncode == 130, log
    assert "stopped after" in log and "Traceback" not in log


def test_listen_times_out_with_a_clear_message(endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["listen", "--connect", endpoint, "--timeout", "0.3"]) == 1
    assert "nothing received from" in capsys.readouterr().err


def test_run_exercises_tiles_serial_recording_and_png(
    scnet_t_onnx: Path, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    db = tmp_path / "run.db"
    args = ["run", "--model", str(scnet_t_onnx), "--source", "synthetic://?width=100&height=70&fps=0",
            "--frames", "3", "--bind", endpoint, "--tile", "64x32", "--tile-overlap", "8", "--infer-batch", "4",
            "--encoding", "png", "--threshold", "0.6", "--hysteresis", "0.55", "--serial", "loop://",
            "--record", str(db), "--log-every", "0", "--postprocess-workers", "3"]  # fmt: skip
    caplog.set_level(logging.INFO)
    assert main(args) == 0, capsys.readouterr().err
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT width, height, threshold FROM frames").fetchall()
    assert rows == [(100, 70, pytest.approx(0.6))] * 3
    (summary,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("frame limit after")]
    assert "published=3" in summary and "recorded=3" in summary  # counted after the recording's final commit


def test_run_with_the_replay_backend_says_it_is_a_measurement(
    endpoint: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--backend", "replay", "--replay-ms", "2", "--replay-frames", "2", "--source", SMALL,
            "--frames", "5", "--bind", endpoint, "--log-every", "0"]  # fmt: skip
    with caplog.at_level("INFO"):
        assert main(args) == 0, capsys.readouterr().err
    replay_lines = [r.message for r in caplog.records if "replay measurement" in r.message]
    assert any("frame limit" in line and "published=5" in line for line in replay_lines)


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_the_statistics_mode_makes_the_published_statistics_and_is_recorded(
    mode: StatsMode, endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "run.db"
    chosen = ["--stats", "fast"] if mode == "fast" else []  # exact is the default
    args = ["run", "--backend", "replay", "--replay-ms", "0", "--replay-frames", "3", "--frames", "3",
            "--source", "synthetic://?width=160&height=128&fps=0", "--bind", endpoint, "--log-every", "0",
            "--record", str(db), *chosen]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    recording = read_recording(db)
    assert recording.info["stats"] == mode
    masks = [load_mask(db, frame.mask_path) for frame in recording.frames]
    expected = [crack_stats(mask, mode=mode) for mask in masks]
    assert [(f.skeleton_px, f.max_width_px) for f in recording.frames] == [
        (s.skeleton_px, pytest.approx(s.max_width_px)) for s in expected
    ]
    assert any(crack_stats(mask, mode="fast") != crack_stats(mask) for mask in masks)  # the modes differ here


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "{tmp}/missing.onnx"], "model file not found"),
        (["--model", "{tmp}/model.bin"], "cannot tell the backend"),
        (["--source", "ftp://host/clip"], "unknown source scheme 'ftp'"),
        (["--source", "synthetic://?colour=red"], "unknown option 'colour'"),
        (["--serial", "{tmp}/ttyUSB9"], "cannot open serial port"),
        (["--threshold", "0.5", "--hysteresis", "0.7"], "hysteresis"),
        (["--tile", "50x64"], "multiples"),
        (["--frames", "0"], "frame limit must be at least 1"),
        (["--infer-batch", "0"], "inference batch must be at least 1"),
        (["--reconnect-max", "2"], "--reconnect-max takes a positive number of seconds and a live source"),
        (["--postprocess-workers", "0"], "at least one postprocessing worker"),
        (["--backend", "replay", "--replay-frames", "0"], "--replay-frames must be >= 1"),
    ],
)
def test_user_errors_exit_1_with_one_line(
    extra: list[str], message: str, scnet_t_onnx: Path, endpoint: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    extra = [arg.format(tmp=tmp_path) for arg in extra]
    (tmp_path / "model.bin").write_bytes(b"")
    args = ["run", "--model", str(scnet_t_onnx), "--source", SMALL, "--frames", "2", "--bind", endpoint, *extra]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("crackseg run: error:") and message in err and "\n" not in err


def test_a_public_key_given_as_the_curve_secret_key_is_a_clear_error(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zmq.auth

    public, _ = zmq.auth.create_certificates(str(tmp_path), "server")
    assert main(["run", "--frames", "1", "--bind", endpoint, "--curve-secret-key", public]) == 1
    err = capsys.readouterr().err.strip()
    assert "server.key is a public key certificate (no secret-key)" in err and "\n" not in err


def test_a_busy_port_is_a_clear_error(scnet_t_onnx: Path, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    with ZmqPublisher(endpoint):
        assert main(["run", "--model", str(scnet_t_onnx), "--frames", "1", "--bind", endpoint]) == 1
    assert "already in use" in capsys.readouterr().err


def test_optional_serial_port_may_be_absent(
    scnet_t_onnx: Path, endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = ["run", "--model", str(scnet_t_onnx), "--source", SMALL, "--frames", "2", "--bind", endpoint,
            "--serial", str(tmp_path / "ttyUSB9"), "--serial-optional"]  # fmt: skip
    assert main(args) == 0
    assert any("optional serial link" in r.message for r in caplog.records)


def test_missing_bundled_model_says_to_pass_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crackseg.edge.artifact.errors import CracksegError
    from crackseg.edge.runtime.assembly import build

    def missing(suffix: str = ".onnx") -> Path:
        raise CracksegError("the bundled default model scnet-t-deepcrack.onnx is missing from this installation")

    monkeypatch.setattr(build, "bundled_model", missing)
    assert main(["run", "--frames", "1"]) == 1
    assert "pass a model with --model" in capsys.readouterr().err
