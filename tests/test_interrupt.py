"""Ctrl-C ends the process with 130 even when the main thread cannot stop (stuck in a blocking call)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import default_sigint

STUCK = """
import time
from gvae_bench.interrupt import InterruptWatchdog
InterruptWatchdog(0.5, lambda: "interrupted after 4 of 5 run(s)").start()
print("ready", flush=True)
end = time.monotonic() + 30
while time.monotonic() < end:  # swallows KeyboardInterrupt, as a call that never returns to Python would
    try:
        time.sleep(0.1)
    except KeyboardInterrupt:
        pass
"""


def test_a_stuck_main_thread_still_exits_130_after_ctrl_c():
    process = subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=default_sigint)
    assert process.stdout.readline().strip() == "ready"
    began = time.monotonic()
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130 and time.monotonic() - began < 10
    assert "interrupted after 4 of 5 run(s)" in stderr
