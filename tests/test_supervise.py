"""scripts/supervise.sh, which `make run` runs the Celery worker under: a command that exits is
started again (with a growing pause), and SIGTERM or SIGINT stops the command, then itself."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "supervise.sh"


def _wait_for(predicate, timeout=15, what="it"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _start(tmp_path, *command, **env):
    return subprocess.Popen(
        [str(SCRIPT), "test-child", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
        cwd=tmp_path,
    )


def test_a_command_that_exits_is_started_again_with_a_growing_pause(tmp_path):
    runs = tmp_path / "runs"
    # Each run records when it started, then fails.
    child = f"import time; open({str(runs)!r}, 'a').write(f'{{time.monotonic()}}\\n'); exit(3)"
    process = _start(tmp_path, sys.executable, "-c", child)
    try:
        _wait_for(lambda: runs.exists() and len(runs.read_text().split()) >= 3, what="3 runs")
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    starts = [float(line) for line in runs.read_text().split()]
    assert starts[1] - starts[0] >= 0.9  # 1 s, then
    assert starts[2] - starts[1] >= 1.9  # 2 s
    assert "test-child exited with status 3" in output
    assert process.returncode == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_command_and_the_supervisor(tmp_path, stop_signal):
    marker = tmp_path / "stopped"
    # A long-running command that notes the SIGTERM it is sent (as Celery warm-shuts down).
    child = (
        "import signal, sys, time\n"
        f"def stop(*_): open({str(marker)!r}, 'w').write('TERM'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"open({str(tmp_path / 'up')!r}, 'w').write('up')\n"
        "time.sleep(60)\n"
    )
    process = _start(tmp_path, sys.executable, "-c", child)
    _wait_for(lambda: (tmp_path / "up").exists(), what="the command to start")

    started = time.monotonic()
    process.send_signal(stop_signal)
    output, _ = process.communicate(timeout=10)

    assert time.monotonic() - started < 5
    assert process.returncode == 0
    assert marker.read_text() == "TERM"
    assert "test-child stopped" in output
    assert "starting it again" not in output


def test_it_refuses_bad_arguments(tmp_path):
    assert subprocess.run([str(SCRIPT), "alone"], capture_output=True).returncode == 2
    bad = _start(tmp_path, "true", SUPERVISE_FIRST_DELAY="soon")
    output, _ = bad.communicate(timeout=10)
    assert bad.returncode == 2
    assert "whole seconds" in output
