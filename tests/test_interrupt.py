"""Ctrl-C ends the process with 130 even when the main thread cannot stop (stuck in a blocking call)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import default_sigint

# The main thread never acts on Ctrl-C, as in a call that never returns to Python: its SIGINT handler
# does nothing (a loop swallowing KeyboardInterrupt would let one escape between two statements, and
# the child would then die of the signal instead).
STUCK = """
import signal, time
from gvae_bench.interrupt import InterruptWatchdog
signal.signal(signal.SIGINT, lambda signum, frame: None)
InterruptWatchdog(0.5, lambda: "interrupted after 4 of 5 run(s)").start()
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.subprocess
def test_a_stuck_main_thread_still_exits_130_after_ctrl_c():
    process = subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=default_sigint)
    assert process.stdout.readline().strip() == "ready"
    began = time.monotonic()
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130 and time.monotonic() - began < 10
    assert "interrupted after 4 of 5 run(s)" in stderr
