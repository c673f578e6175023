"""Fault injection: bad input files, bad options and a hostile environment end in one clear line, never a traceback.

Each case is one of the defects of issue 28 (numbered as there); each fails without its fix. Cases that need
something the machine may lack (a tmpfs) skip with the reason.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from types import TracebackType

import numpy as np
import pytest

from crackseg.edge.artifact.size import Size
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends.base import BackendError, Runner
from crackseg.edge.cli import listen
from crackseg.edge.cli.main import main
from crackseg.edge.runtime.geometry import make_geometry
from crackseg.edge.runtime.message import MessageBuilder
from crackseg.edge.runtime.pipeline import Pipeline, PipelineConfig
from crackseg.edge.runtime.postprocess import Postprocessor
from crackseg.edge.runtime.sources import open_source
from crackseg.edge.runtime.sources.folder import ImageFolderSource
from crackseg.edge.runtime.sources.image_check import decode_jpeg_strictly, header_size
from crackseg.edge.runtime.wire import MaskEncoding, MaskMessage


def _one_line_error(capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


# -- 11: serial, pose and overlay options ---------------------------------------------------------------------


def test_11_a_bad_pyserial_url_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("serial")
    from crackseg.edge.runtime.sinks.serial_link import SerialLink, SerialLinkError

    link = SerialLink("loop://?bad_option=1", 115200, 10.0)
    with pytest.raises(SerialLinkError, match=r"cannot open serial port loop://\?bad_option=1: unknown option"):
        link._open_serial()


@pytest.mark.parametrize("option", ["--serial", "--mavlink", "--overlay", "--odometry", "--record"])
def test_11_an_empty_value_is_refused_not_taken_as_off(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", option, ""])
    assert exit_info.value.code == 2
    _one_line_error(capsys, f"argument {option}: expected a ")


# -- 8: --record on a folder ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["/", ".", "some/folder/"])
def test_8_record_on_a_folder_is_one_line(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--record", value])
    assert exit_info.value.code == 2
    _one_line_error(capsys, "argument --record: expected a database file")


# -- 15: listen --timeout prints the loss summary -------------------------------------------------------------


class _SilentSubscriber:
    """A subscriber that heard a few messages with gaps, then nothing."""

    endpoint = "tcp://127.0.0.1:1"
    missed = 3
    rejected = 1

    def __enter__(self) -> _SilentSubscriber:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def receive(self, timeout_s: float) -> None:
        return None


def test_15_listen_timeout_still_prints_what_was_lost(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(listen, "_subscriber", lambda args: _SilentSubscriber())
    assert main(["listen", "--timeout", "0.05"]) == 1
    _one_line_error(capsys, "nothing received from", "3 message(s) missed (sequence gaps), 1 malformed")


# -- 1, 6, 7: image files -------------------------------------------------------------------------------------


def _encoded(ext: str, width: int = 37, height: int = 23) -> bytes:
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    ok, data = cv2.imencode(ext, rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    assert ok
    return bytes(data.tobytes())


def _frames(uri: str) -> tuple[list[str | None], int]:
    with open_source(uri) as source:
        names = [frame.name for frame in source]
        return names, source.stats.corrupt_skipped


@pytest.mark.parametrize("ext", [".bmp", ".webp", ".tif", ".tiff", ".jpg", ".png"])
def test_1_an_empty_image_file_is_skipped_not_fatal(tmp_path: Path, ext: str) -> None:
    (tmp_path / "a.png").write_bytes(_encoded(".png"))
    (tmp_path / f"b{ext}").write_bytes(b"")
    (tmp_path / "c.png").write_bytes(_encoded(".png"))
    assert _frames(str(tmp_path)) == (["a", "c"], 1)


def test_1_an_empty_image_as_the_whole_source_ends_cleanly(tmp_path: Path) -> None:
    empty = tmp_path / "only.webp"
    empty.write_bytes(b"")
    assert _frames(str(empty)) == ([], 1)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tif"])
def test_6_header_size_reads_every_format_opencv_writes(ext: str) -> None:
    assert header_size(_encoded(ext, 37, 23)) == Size(height=23, width=37)


def test_6_header_size_of_what_is_not_an_image_is_none() -> None:
    assert header_size(b"") is None
    assert header_size(b"hello world, not an image at all") is None
    assert header_size(b"\xff\xd8\xff") is None  # a JPEG cut inside its first segment


def _huge_png(width: int, height: int) -> bytes:
    """A small file announcing a huge image (its pixel data is a stub: it must never be decoded)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_6_an_image_too_large_for_the_wire_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cv2 = pytest.importorskip("cv2")
    huge = tmp_path / "huge.png"
    huge.write_bytes(_huge_png(20000, 20000))
    decoded: list[int] = []
    real = cv2.imdecode

    def counting(*args: object) -> object:
        decoded.append(1)
        return real(*args)

    monkeypatch.setattr(cv2, "imdecode", counting)
    image, problem = ImageFolderSource._decode(huge)
    assert image is None and "header announces 20000x20000 pixels" in problem
    assert decoded == []  # refused before any pixel was decoded


def test_6_the_folder_source_refuses_what_the_wire_cannot_carry() -> None:
    from crackseg.edge.runtime.sources import folder
    from crackseg.edge.runtime.wire import MAX_DIM

    assert folder.MAX_DIM == MAX_DIM


def _damaged_jpegs() -> dict[str, bytes]:
    whole = _encoded(".jpg", 128, 96)
    zeroed = bytearray(whole)
    middle = len(zeroed) // 2
    zeroed[middle : middle + 200] = bytes(200)
    return {"half": whole[: len(whole) // 2] + b"\xff\xd9", "zeroed": bytes(zeroed)}


@pytest.mark.parametrize("kind", ["half", "zeroed"])
def test_7_a_damaged_jpeg_ending_in_ffd9_is_skipped(tmp_path: Path, kind: str) -> None:
    (tmp_path / "a.jpg").write_bytes(_encoded(".jpg", 128, 96))
    (tmp_path / "b.jpg").write_bytes(_damaged_jpegs()[kind])
    image, problem = ImageFolderSource._decode(tmp_path / "b.jpg")
    assert image is None and problem.startswith("damaged JPEG data: ")
    assert _frames(str(tmp_path)) == (["a"], 1)


def test_7_a_whole_jpeg_decodes(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(_encoded(".jpg", 128, 96))
    image, problem = ImageFolderSource._decode(tmp_path / "a.jpg")
    assert image is not None and image.shape == (96, 128, 3) and problem == ""


def test_7_other_stderr_output_during_a_jpeg_decode_is_passed_on(capfd: pytest.CaptureFixture[str]) -> None:
    import os

    result, damage = decode_jpeg_strictly(lambda: os.write(2, b"someone else's line\n"))
    assert damage == [] and result > 0
    assert "someone else's line" in capfd.readouterr().err


# -- 4, 5: what a model returns --------------------------------------------------------------------------------

SPEC = ModelSpec(arch="fake", size_multiple=16, threshold=0.5)


class _FakeModel(Runner):
    """Returns half-resolution maps (``half``) or NaN maps (``nan``), like a broken export would."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.name, self.kind = f"fake-{kind}", kind

    @property
    def spec(self) -> ModelSpec:
        return SPEC

    def activate_impl(self) -> None:
        pass

    def close_impl(self) -> None:
        pass

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        prob = (image[:, :1] + 1.0) / 2.0
        if self.kind == "half":
            return np.ascontiguousarray(prob[:, :, ::2, ::2])
        if self.kind == "nan":
            return np.full_like(prob, np.nan)
        return prob


class _Collect:
    def __init__(self) -> None:
        self.frames: list[MaskMessage] = []

    def send(self, message: MaskMessage) -> None:
        if message.mask is not None:
            self.frames.append(message)

    def counters(self) -> dict[str, int]:
        return {}


def _pipeline(
    runner: Runner, tile: str | None = None, frames: int = 4, sink: _Collect | None = None
) -> tuple[Pipeline, _Collect]:
    from crackseg.edge.artifact.size import parse_size

    sink = sink or _Collect()
    geometry = make_geometry(SPEC, None, parse_size(tile) if tile else None, 16, "feather")
    source = open_source("synthetic://?width=128&height=96&fps=0")
    config = PipelineConfig(max_frames=frames, log_every_s=0)
    builder = MessageBuilder(bytes(16), MaskEncoding.RAW)
    return Pipeline(source, runner.activate(), geometry, Postprocessor(0.5), builder, [sink], config), sink


def test_4_a_half_resolution_output_is_a_clear_error_not_a_small_mask() -> None:
    with _FakeModel("half") as runner, pytest.raises(BackendError, match=r"returned 1x1x48x64 for a 1x3x96x128"):
        runner.infer(np.zeros((1, 3, 96, 128), np.float32))


@pytest.mark.parametrize("tile", [None, "64x64"])
def test_4_a_half_resolution_model_stops_the_run_with_one_line(tile: str | None) -> None:
    pytest.importorskip("cv2")
    pipeline, sink = _pipeline(_FakeModel("half"), tile)
    with pytest.raises(BackendError, match="the spec promises one probability map per image at input resolution"):
        pipeline.run()
    assert sink.frames == []  # nothing wrong was published


def test_4_through_the_command_line_it_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("zmq")
    pytest.importorskip("cv2")
    from crackseg.edge.runtime.assembly import build

    monkeypatch.setattr(build, "open_runner", lambda path: _FakeModel("half"))
    (tmp_path / "m.onnx").write_bytes(b"a model file, hashed for the messages")
    argv = ["run", "--model", str(tmp_path / "m.onnx"), "--source", "synthetic://?width=128&height=96&fps=0",
            "--frames", "2", "--bind", "tcp://127.0.0.1:*", "--log-every", "0",
            "--tile", "64x64", "--tile-overlap", "16"]  # fmt: skip
    assert main(argv) == 1
    err = _one_line_error(capsys, "crackseg run: error: fake-half: the model returned 1x1x32x32 for a 1x3x64x64")
    assert len(err.strip().splitlines()) == 1


def test_5_nan_outputs_are_counted_and_warned_about_at_a_bounded_rate(caplog: pytest.LogCaptureFixture) -> None:
    import time

    pytest.importorskip("cv2")
    pipeline, _ = _pipeline(_FakeModel("nan"), frames=30)
    started = time.monotonic()
    with caplog.at_level("WARNING"):
        report = pipeline.run()
    elapsed = time.monotonic() - started
    assert report.metrics.counters["nonfinite_outputs"] == 30
    warnings = [r.getMessage() for r in caplog.records if "NaN or infinity" in r.getMessage()]
    assert 1 <= len(warnings) <= 1 + elapsed / 10.0  # one, then at most one per 10 s of run
    assert "(1 frame(s) so far)" in warnings[0]


# -- 2, 3: a spec with fields of the wrong type or range -------------------------------------------------------


def _tiny_onnx(path: Path, spec: dict[str, object]) -> Path:
    """A one-node model (mean of the channels, through a sigmoid) carrying ``spec`` as its metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
            helper.make_node("Sigmoid", ["mean"], ["prob"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["n", 1, "h", "w"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"crackseg_spec": json.dumps(spec)})
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    ("field", "value"),
    [("threshold", "0.5"), ("pixel_mean", 127.5), ("pixel_mean", [1, 2]), ("size_multiple", 0),
     ("size_multiple", "32"), ("input_size", [1]), ("pixel_std", [0, 0, 0])],
)  # fmt: skip
def test_2_3_a_model_whose_spec_is_out_of_contract_is_one_line(
    field: str, value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    spec = {**json.loads(ModelSpec(arch="tiny").to_json()), field: value}
    model = _tiny_onnx(tmp_path / "tiny.onnx", spec)
    argv = ["run", "--model", str(model), "--source", "synthetic://?width=64&height=48&fps=0", "--frames", "2",
            "--bind", "tcp://127.0.0.1:*", "--log-every", "0"]  # fmt: skip
    assert main(argv) == 1
    err = _one_line_error(capsys, f"model spec field '{field}' must be")
    assert len(err.strip().splitlines()) == 1


def test_2_the_tiny_model_with_a_valid_spec_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("zmq")
    model = _tiny_onnx(tmp_path / "tiny.onnx", json.loads(ModelSpec(arch="tiny").to_json()))
    argv = ["run", "--model", str(model), "--source", "synthetic://?width=64&height=48&fps=0", "--frames", "2",
            "--bind", "tcp://127.0.0.1:*", "--log-every", "0"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err


# -- 8, 9, 10, 14, 16: the recording ---------------------------------------------------------------------------


def _mask_message(frame_id: int, height: int = 12, width: int = 20, noise: bool = False) -> MaskMessage:
    from crackseg.edge.runtime.stats import crack_stats

    if noise:  # incompressible: fills a small disk fast
        mask = np.random.default_rng(frame_id).random((height, width)) > 0.5
    else:
        mask = np.zeros((height, width), bool)
        mask[frame_id % height, : frame_id % width + 1] = True
    return MaskMessage(frame_id, frame_id, "cam", 1000 + frame_id, 2000 + frame_id, bytes(16), 0.5, mask,
                       crack_stats(mask))  # fmt: skip


def _rows(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM frames").fetchone()[0])


def _recording(db: Path, frames: int) -> None:
    from crackseg.edge.runtime.sinks.record import Recorder

    with Recorder(db) as recorder:
        for frame_id in range(frames):
            recorder.send(_mask_message(frame_id))


@pytest.mark.parametrize("name", ["", ".", "folder"])
def test_8_a_recorder_on_a_folder_is_a_clear_error(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crackseg.edge.runtime.sinks.record import Recorder, RecordError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(RecordError, match="it is a folder; name a database file"):
        Recorder(Path(name) if name else "").open()


def test_9_a_damaged_recording_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from crackseg.edge.runtime.sinks.record import Recorder, RecordError

    db = tmp_path / "flight.db"
    _recording(db, 60)
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 3 * page
    data[page:] = np.random.default_rng(0).integers(0, 256, len(data) - page, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))
    masks_before = sorted(p.name for p in tmp_path.rglob("*.png"))
    with pytest.raises(RecordError, match=r"flight.db is (damaged|not a crackseg recording)|malformed|not a database"):
        Recorder(db).open()
    assert db.read_bytes() == bytes(data)  # untouched
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == masks_before  # no orphaned masks


def test_10_another_programs_database_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    from crackseg.edge.runtime.sinks.record import Recorder, RecordError

    db = tmp_path / "notes.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        con.execute("INSERT INTO notes (text) VALUES ('mine')")
    con.close()
    before = db.read_bytes()
    with pytest.raises(RecordError, match=r"notes.db is not a crackseg recording .*tables: notes.*left untouched"):
        Recorder(db).open()
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no WAL, no masks folder


def test_10_recordings_are_marked_and_older_ones_still_open(tmp_path: Path) -> None:
    import sqlite3

    from crackseg.edge.runtime.sinks.record import APPLICATION_ID, Recorder

    db = tmp_path / "flight.db"
    _recording(db, 2)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        con.execute("PRAGMA application_id=0")  # as written before the mark existed
    con.close()
    with Recorder(db) as recorder:
        recorder.send(_mask_message(5))
    assert recorder.written == 1 and _rows(db) == 3
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    con.close()


def test_14_a_full_disk_logs_once_counts_every_lost_frame_cleans_up_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import errno

    from crackseg.edge.runtime.sinks.record import Recorder

    full = False
    real_write = Path.write_bytes

    def write_bytes(self: Path, data: bytes) -> int:  # type: ignore[override]
        if full:
            real_write(self, data[:7])  # what a full disk leaves: a short temporary file, then the error
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    db = tmp_path / "flight.db"
    with caplog.at_level("WARNING"), Recorder(db) as recorder:
        recorder.retry_s = 0.0  # retry at every batch: the test never waits for a clock
        for frame_id in range(5):
            recorder.send(_mask_message(frame_id))
        recorder.flush(30)
        full = True
        for frame_id in range(5, 45):
            recorder.send(_mask_message(frame_id))
        recorder.flush(30)
        assert (recorder.written, recorder.lost) == (5, 40)
        assert not list(tmp_path.rglob("*.partial"))  # temporary files removed
        full = False
        for frame_id in range(45, 48):
            recorder.send(_mask_message(frame_id))
    assert (recorder.written, recorder.lost) == (8, 40)
    assert recorder.counters()["record_lost"] == 40
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()
    assert any("resumed" in r.getMessage() and "40 frame(s) lost" in r.getMessage() for r in caplog.records)
    assert _rows(db) == 8 and len(list(tmp_path.rglob("*.png"))) == 8  # no orphaned masks


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Path:
    import os
    import subprocess

    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the simulated full disk test covers the logic")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_14_a_real_full_disk(small_tmpfs: Path, caplog: pytest.LogCaptureFixture) -> None:
    from crackseg.edge.runtime.sinks.record import Recorder

    db = small_tmpfs / "flight.db"
    filler = small_tmpfs / "filler"
    sent = 0
    with caplog.at_level("WARNING"), Recorder(db) as recorder:
        recorder.retry_s = 0.0
        filler.write_bytes(bytes(600_000))
        for _ in range(60):  # ~8 KiB masks: far more than the disk holds
            recorder.send(_mask_message(sent, 256, 256, noise=True))
            sent += 1
            recorder.flush(30)
        assert recorder.lost > 0 and recorder.written + recorder.lost == sent
        assert not list(small_tmpfs.rglob("*.partial"))
        filler.unlink()  # space returns
        written = recorder.written
        recorder.send(_mask_message(sent, 16, 16))
        sent += 1
        recorder.flush(30)
        assert recorder.written == written + 1
    assert recorder.written + recorder.lost == sent
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1


def test_16_the_summary_counts_what_the_database_holds_when_another_process_locks_it(tmp_path: Path) -> None:
    import sqlite3

    from crackseg.edge.runtime.sinks.record import Recorder

    db = tmp_path / "flight.db"
    recorder = Recorder(db)
    recorder.busy_timeout_s = 0.5
    with recorder:
        recorder.send(_mask_message(0))
        recorder.flush(30)
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another process writes and holds the lock past the run's end
        for frame_id in range(1, 20):
            recorder.send(_mask_message(frame_id))
        recorder.flush(0.2)  # what the pipeline does before its summary
        counted = recorder.counters()
        locker.execute("ROLLBACK")
        locker.close()
    assert counted["recorded"] + counted["record_lost"] == 20
    assert recorder.counters() == counted  # nothing written after the summary
    assert _rows(db) == counted["recorded"]


# -- 12, 13 below the command line; also seen: a world-readable secret key --------------------------------------


def test_12_13_the_python_api_refuses_nan_too(tmp_path: Path) -> None:
    from crackseg.edge.runtime.sinks.overlay_output import OverlayError, OverlayOutput
    from crackseg.edge.runtime.sinks.serial_link import SerialLink, SerialLinkError

    nan = float("nan")
    with pytest.raises(ValueError, match="duration must be positive"):
        PipelineConfig(duration_s=nan)
    with pytest.raises(ValueError, match="log period"):
        PipelineConfig(log_every_s=nan)
    with pytest.raises(OverlayError, match="--overlay-fps must be positive"):
        OverlayOutput(str(tmp_path / "out.mp4"), nan)
    with pytest.raises(SerialLinkError, match="rate must be positive"):
        SerialLink("loop://", 115200, nan)


def test_a_world_readable_curve_secret_key_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("zmq")
    from crackseg.edge.runtime.sinks.publish_zmq import load_curve_key

    key = tmp_path / "server.key_secret"
    key.write_text("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
    key.chmod(0o644)
    with caplog.at_level("WARNING"):
        load_curve_key(key, "secret")
    assert "readable by other users (mode 644): chmod 600 it" in caplog.text
    caplog.clear()
    key.chmod(0o600)
    with caplog.at_level("WARNING"):
        load_curve_key(key, "secret")
    assert "readable by other users" not in caplog.text


def test_a_read_only_folder_is_named_not_unable_to_open(tmp_path: Path) -> None:
    import os
    import subprocess

    from crackseg.edge.runtime.sinks.record import Recorder, RecordError

    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:  # root writes through permissions: a read-only filesystem is what stops it
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=False)
        if result.returncode != 0:
            pytest.skip("cannot mount a read-only tmpfs here")
        mounted = True
    else:
        folder.chmod(0o555)
    try:
        with pytest.raises(RecordError, match=r"its folder .*ro is not writable \(read-only filesystem\?\)"):
            Recorder(folder / "flight.db").open()
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        else:
            folder.chmod(0o755)


class _SlowFlush(_Collect):
    """A sink that writes behind and takes a second to flush."""

    flush_started = 0.0

    def flush(self, timeout_s: float) -> None:
        import time

        self.flush_started = time.monotonic()
        time.sleep(1.0)


def test_16_the_runs_duration_ends_before_the_recording_flushes() -> None:
    import time

    pytest.importorskip("cv2")
    before = time.monotonic()
    sink = _SlowFlush()
    pipeline, _ = _pipeline(_FakeModel("ok"), frames=2, sink=sink)
    report = pipeline.run()
    assert sink.flush_started > 0
    assert report.metrics.elapsed_s <= sink.flush_started - before


def test_no_empty_run_row_is_left_when_the_masks_folder_cannot_be_made(tmp_path: Path) -> None:
    import sqlite3

    from crackseg.edge.runtime.sinks.record import Recorder, RecordError

    db = tmp_path / "flight.db"
    _recording(db, 1)
    (tmp_path / "flight-masks").rename(tmp_path / "elsewhere")
    (tmp_path / "flight-masks").write_text("a file where the masks folder belongs")
    with pytest.raises(RecordError, match="cannot record to"):
        Recorder(db).open()
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1  # only the first run's
    con.close()
