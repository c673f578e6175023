"""Fault injection: bad input files, bad options and a hostile environment end in one clear line, never a traceback.

Each case is one of the defects of issue 28 (numbered as there); each fails without its fix. Cases that need
something the machine may lack (a tmpfs) skip with the reason.
"""

from __future__ import annotations

from types import TracebackType

import pytest

from crackseg.edge.cli import listen
from crackseg.edge.cli.main import main


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
