"""Ctrl-C always ends a sweep: a watchdog for when the main thread is stuck where Python cannot
raise ``KeyboardInterrupt``.

Python runs its SIGINT handler only when the main thread returns to the interpreter. A sweep on
Ray waits in Ray's own blocking calls; when Ctrl-C has also stopped the Ray processes of the
terminal's process group, such a call can wait for them forever, and the sweep would hang instead
of exiting 130. ``InterruptWatchdog`` receives the signal through ``signal.set_wakeup_fd`` on a
thread of its own; if the process is still alive ``grace`` seconds later, it writes the sweep's
"interrupted" line and ends the process with status 130. Finished records are on disk already; an
unfinished run keeps its last checkpoint and resumes next time.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Callable


class InterruptWatchdog:
    """Ends the process with status 130 when a SIGINT has not ended it within ``grace`` seconds."""

    def __init__(self, grace: float, message: Callable[[], str]) -> None:
        self.grace, self.message = grace, message
        self._previous: int | None = None
        self._fds: tuple[int, int] | None = None

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # the wake-up fd can only be set from the main thread
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._previous = signal.set_wakeup_fd(write)
        self._fds = (read, write)
        threading.Thread(target=self._watch, args=(read,), name="interrupt-watchdog", daemon=True).start()

    def _watch(self, read: int) -> None:
        while True:
            try:
                data = os.read(read, 64)
            except OSError:
                return
            if not data:
                return
            if signal.SIGINT in data:
                time.sleep(self.grace)
                if self._fds is None:
                    return  # stopped meanwhile: the interrupt was handled in time
                sys.stderr.write(f"\n{self.message()}\n")
                sys.stderr.flush()
                os._exit(130)

    def stop(self) -> None:
        if self._fds is None:
            return
        signal.set_wakeup_fd(self._previous if self._previous is not None else -1)
        read, write = self._fds
        self._fds = None
        os.close(write)
        os.close(read)
