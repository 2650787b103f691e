"""Ctrl-C always ends a sweep, and never loses the training done since the last checkpoint.

``StepBoundarySignals`` holds SIGINT and SIGTERM while a training loop runs, so that the loop saves a
checkpoint at its next step boundary and only then lets the signal act as it would have.

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
from typing import Any, Callable


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


#: the signals a training loop holds until its next step boundary: Ctrl-C, and what a scheduler or
#: ``kill`` sends to stop a job (Slurm, Kubernetes and systemd send SIGTERM before SIGKILL)
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StepBoundarySignals:
    """SIGINT and SIGTERM held until the training loop's next step boundary, then acted on.

    While the context is open (in the main thread of any process that trains: the command line's,
    or a child process of a parallel executor, which receives the terminal's Ctrl-C with the whole
    process group), a held signal only records its number. The loop calls ``at_boundary(save)``
    after each step: when a signal is pending, ``save()`` writes the checkpoint, the handlers that
    were there before are put back and the signal is raised again, so it then does what it would
    have done at once (SIGINT: ``KeyboardInterrupt``, exit status 130 from the command line;
    SIGTERM at its default: the process ends by the signal). Should that handler return (one that
    ignores the signal), the loop goes on with the signals held again.

    A second signal while one is pending acts at once, without the checkpoint (the way out of a
    step that never ends). A signal ignored when the context opens (``SIG_IGN``: a background job,
    ``nohup``) stays ignored. Outside the main thread, where Python cannot set handlers, the context
    holds nothing. On leaving the context the previous handlers are restored, and a signal still
    pending (one that came during the last step) is raised again there.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StepBoundarySignals":
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in HELD_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN or previous is None:  # None: a handler set outside Python, left alone
                continue
            self._previous[signum] = previous
            signal.signal(signum, self._hold)
        return self

    def _hold(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # the second one: act now
            self._restore()
            signal.raise_signal(signum)
            return
        self.received = signum

    @property
    def pending(self) -> str | None:
        """The name of the signal waiting for the step boundary (``SIGINT``, ``SIGTERM``), or None."""
        return None if self.received is None else signal.Signals(self.received).name

    def at_boundary(self, save: Callable[[], None]) -> None:
        """At a step boundary: when a signal is pending, ``save()``, then let the signal act."""
        if self.received is None:
            return
        save()
        self._deliver()
        for signum in self._previous:  # the previous handler returned: hold the signals again
            signal.signal(signum, self._hold)

    def _deliver(self) -> None:
        signum, self.received = self.received, None
        self._restore()
        if signum is not None:
            signal.raise_signal(signum)

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._deliver()  # restores the handlers; raises a signal still pending, which outranks an error
        finally:
            self._previous = {}
