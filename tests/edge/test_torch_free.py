"""The edge runtime and the CLI import on a machine without a training stack (a Jetson image)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run_without(blocked: list[str], code: str) -> subprocess.CompletedProcess[str]:
    prelude = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, check=False
    )


def test_edge_and_cli_import_without_torch_or_tensorrt() -> None:
    result = _run_without(
        ["torch", "tensorrt", "pycuda"],
        """
        import crackseg.edge, crackseg.edge.cli.main, crackseg.edge.backends, crackseg.edge.runtime.sources
        import crackseg.edge.runtime.wire, crackseg.edge.runtime.serial_frame, crackseg.edge.runtime.stats
        import crackseg.edge.backends.preprocess
        import crackseg.edge.artifact.read, crackseg.edge.artifact.loaders, crackseg.edge.backends.pytorch
        import crackseg.edge.evaluation.evaluate, crackseg.edge.evaluation.dataset
        """,
    )
    assert result.returncode == 0, result.stderr


def test_cli_lists_training_commands_as_unavailable_without_torch() -> None:
    result = _run_without(
        ["torch"],
        """
        from crackseg.edge.cli.main import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "(unavailable: pip install 'crackseg[train]')" in result.stdout


def test_training_command_with_its_options_names_the_missing_extra() -> None:
    result = _run_without(
        ["torch"],
        """
        from crackseg.edge.cli.main import main
        main(["train", "--model", "scnet-t", "--epochs", "1"])
        """,
    )
    assert result.returncode != 0
    assert "pip install 'crackseg[train]'" in result.stderr, result.stderr
    assert "unrecognized arguments" not in result.stderr


def test_unknown_option_of_an_installed_command_is_still_an_error() -> None:
    result = _run_without(["torch"], 'from crackseg.edge.cli.main import main\nmain(["run", "--no-such-flag"])')
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr
