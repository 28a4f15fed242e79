"""Cutting a step that runs past its trial's budget.

The runner checks the budget between steps, as AlgoPerf does: a step that ends past the budget counts, and
the trial ends after it. A step that never ends would hold up the sweep: zo_coordinate at its default
density (one forward pass per parameter, DeepZero's CGE) ran its first dlrm_small `cpu` step 10 minutes
into a 75 s budget. So while a step runs, a daemon thread watches the time; once the trial's counted time,
the running step's included, is GRACE of the budget past the budget, the thread raises StepOverBudget
inside the step through a signal handler of the main thread (`_thread.interrupt_main`: it lands between
two Python bytecodes, so a single long C call ends first). The runner then ends the trial out of budget.

Only in the main thread of a single-process trial: a signal handler is the main thread's, and cutting one
rank of a multi-process trial would leave the others waiting in a collective.
"""

from __future__ import annotations

import _thread
import signal
import threading
import time

#: a step is cut once the counted time, the running step's included, passes the budget by this fraction of it:
#: half, so that only a step longer than half a budget is ever cut (one that ends counts, as in AlgoPerf)
GRACE = 0.5
#: how often the watching thread looks: a cut comes at most this much later than due
POLL_S = 0.25
#: the signal whose handler raises inside the step; interrupt_main only calls the handler, no signal is sent.
#: Not SIGUSR1 (the DDP launcher's interrupt for rank 0) nor SIGUSR2 and SIGTERM (submitit's preemption)
SIGNAL = signal.SIGALRM


class StepOverBudget(BaseException):
    """Raised inside a step that ran past its trial's budget; a BaseException, so that a submission's
    `except Exception` cannot swallow it."""


class StepWatchdog:
    """`arm(seconds)` before a step, `disarm()` after it; `close()` when the trial ends."""

    def __init__(self) -> None:
        self._deadline: float | None = None  # time.monotonic() the running step is cut at; None: no step runs
        self._stop = threading.Event()
        self._previous = signal.signal(SIGNAL, self._handle)
        self._thread = threading.Thread(target=self._watch, name="timetrial-step-watchdog", daemon=True)
        self._thread.start()

    def arm(self, seconds: float) -> None:
        self._deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        self._deadline = None

    def _handle(self, signum, frame) -> None:
        # runs in the main thread: a request that arrives after its step ended finds no deadline and is dropped
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._deadline = None
            raise StepOverBudget

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            deadline = self._deadline
            if deadline is not None and time.monotonic() >= deadline:
                _thread.interrupt_main(SIGNAL)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        signal.signal(SIGNAL, self._previous)
