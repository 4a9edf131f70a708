"""The monitors' event loop: one thread waits on every monitor's descriptors.

QEMU serves its monitors from one GLib main loop; pyqom does the same with a
small loop over :mod:`selectors`: callbacks for readable and writable
descriptors, callbacks to run soon (from any thread, which is how the command
thread, the signal thread and, later, a CPU thread hand results and events to
the monitors), and timers.  It is not :mod:`asyncio`: the monitors need none
of its machinery, and importing it alone took a third of pyqom's start-up.

Everything a loop calls runs on the thread that runs it, one callback at a
time, in the order the callbacks became due; :meth:`EventLoop.call_soon_threadsafe`
keeps the order of the calls made from one thread.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import os
import selectors
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

Callback = Callable[[], Any]


class Timer:
    """A callback due at a time on the loop's clock; :meth:`cancel` drops it."""

    __slots__ = ("_order", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callback, order: int) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self._order = order

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return (self.when, self._order) < (other.when, other._order)


class Outcome(Generic[T]):
    """The result (or the error) of work done elsewhere, settled on the loop thread.

    Callbacks added with :meth:`add_done_callback` run, in the order they were
    added, when the outcome is settled (at once if it is settled already).
    """

    __slots__ = ("_callbacks", "_done", "_error", "_result")

    def __init__(self) -> None:
        self._done = False
        self._result: T | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Outcome[T]], Any]] = []

    def done(self) -> bool:
        return self._done

    def result(self) -> T:
        """The result; raises the error if the work failed, ``RuntimeError`` if not done."""
        if not self._done:
            raise RuntimeError("the outcome is not settled yet")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # settled with a T

    def set_result(self, result: T) -> None:
        self._settle(result, None)

    def set_exception(self, error: BaseException) -> None:
        self._settle(None, error)

    def _settle(self, result: T | None, error: BaseException | None) -> None:
        if self._done:
            raise RuntimeError("the outcome is settled already")
        self._done, self._result, self._error = True, result, error
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def add_done_callback(self, callback: Callable[[Outcome[T]], Any]) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)


class EventLoop:
    """A selector loop: descriptor callbacks, soon callbacks, timers.

    Run it with :meth:`run_until` (or :meth:`run_forever` and :meth:`stop`) on
    one thread; every other method but :meth:`call_soon_threadsafe` and
    :meth:`stop` belongs to that thread (or to set-up, before it runs).
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._ready: collections.deque[Callback] = collections.deque()
        self._timers: list[Timer] = []
        self._timer_order = 0
        self._readers: dict[int, Callback] = {}
        self._writers: dict[int, Callback] = {}
        self._stopping = False
        self._closed = False
        self._owner: threading.Thread | None = None
        # Held while writing to the wake-up pipe and while closing it: a write from
        # another thread must never reach a descriptor number reused after close.
        self._wake_lock = threading.Lock()
        # A byte on this pipe wakes a loop blocked in select (another thread
        # queued a callback).
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)

    # -- time and callbacks ----------------------------------------------------

    @staticmethod
    def time() -> float:
        """The loop's clock (monotonic seconds)."""
        return time.monotonic()

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the next pass, after those queued before it."""
        self._ready.append((lambda: callback(*args)) if args else callback)

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """:meth:`call_soon` from any thread; wakes the loop.

        :raises RuntimeError: the loop is closed.
        """
        with self._wake_lock:
            if self._closed:
                raise RuntimeError("the event loop is closed")
            self.call_soon(callback, *args)
            with contextlib.suppress(BlockingIOError, OSError):  # a full pipe wakes it anyway
                os.write(self._wake_write, b"\0")

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        """Run ``callback(*args)`` ``delay`` seconds from now (loop thread only)."""
        self._timer_order += 1
        timer = Timer(self.time() + delay,
                      (lambda: callback(*args)) if args else callback, self._timer_order)
        heapq.heappush(self._timers, timer)
        return timer

    # -- descriptors -------------------------------------------------------------

    def add_reader(self, fd: int, callback: Callback) -> None:
        """Call ``callback()`` whenever ``fd`` is readable (replaces an earlier one)."""
        self._readers[fd] = callback
        self._update(fd)

    def remove_reader(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None:
            self._update(fd)

    def add_writer(self, fd: int, callback: Callback) -> None:
        """Call ``callback()`` whenever ``fd`` is writable (replaces an earlier one)."""
        self._writers[fd] = callback
        self._update(fd)

    def remove_writer(self, fd: int) -> None:
        if self._writers.pop(fd, None) is not None:
            self._update(fd)

    def _update(self, fd: int) -> None:
        events = ((selectors.EVENT_READ if fd in self._readers else 0)
                  | (selectors.EVENT_WRITE if fd in self._writers else 0))
        registered = fd in self._selector.get_map()
        if not events:
            if registered:
                self._selector.unregister(fd)
        elif registered:
            self._selector.modify(fd, events)
        else:
            self._selector.register(fd, events)

    # -- running -----------------------------------------------------------------

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Run until ``done()`` is true (checked after every pass), :meth:`stop`,
        or ``timeout`` seconds; returns ``done()``."""
        deadline = None if timeout is None else self.time() + timeout
        self._owner = threading.current_thread()
        try:
            while not done() and not self._stopping:
                wait = None if deadline is None else deadline - self.time()
                if wait is not None and wait <= 0:
                    break
                self._run_once(wait)
        finally:
            self._stopping = False
            self._owner = None
        return done()

    def run_pending(self) -> None:
        """One pass without waiting: what is due now runs (events queued by other
        threads reach their listeners)."""
        self._owner = threading.current_thread()
        try:
            self._run_once(0)
        finally:
            self._owner = None

    def run_forever(self) -> None:
        """Run until :meth:`stop`."""
        self.run_until(lambda: False)

    def stop(self) -> None:
        """End :meth:`run_until` / :meth:`run_forever` after the current pass (any thread)."""
        self._stopping = True
        with self._wake_lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"\0")

    @property
    def running_here(self) -> bool:
        """Whether the calling thread is running this loop now."""
        return self._owner is threading.current_thread()

    def _run_once(self, limit: float | None) -> None:
        wait = limit
        if self._ready:
            wait = 0
        else:
            while self._timers and self._timers[0].cancelled:
                heapq.heappop(self._timers)
            if self._timers:
                until_timer = max(0.0, self._timers[0].when - self.time())
                wait = until_timer if wait is None else min(wait, until_timer)
        for key, mask in self._selector.select(wait):
            fd = key.fd
            if fd == self._wake_read:
                with contextlib.suppress(BlockingIOError, OSError):
                    while os.read(self._wake_read, 4096):
                        pass
                continue
            # A callback may remove the other one (a connection closed on read).
            if mask & selectors.EVENT_READ and fd in self._readers:
                self._ready.append(self._readers[fd])
            if mask & selectors.EVENT_WRITE and fd in self._writers:
                self._ready.append(self._writers[fd])
        now = self.time()
        while self._timers and self._timers[0].when <= now:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._ready.append(timer.callback)
        # Only what is due now: callbacks queued by these run on the next pass.
        for _ in range(len(self._ready)):
            callback = self._ready.popleft()
            try:
                callback()
            except Exception:  # one failing callback must not end the monitors
                _report_callback_error(callback)

    def close(self) -> None:
        """Release the selector and the wake-up pipe (the loop cannot run again)."""
        with self._wake_lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._selector.close()
        self._readers.clear()
        self._writers.clear()
        self._ready.clear()
        self._timers.clear()


def _report_callback_error(callback: Callback) -> None:
    import traceback

    sys.stderr.write(f"pyqom: internal error in event loop callback {callback!r}:\n")
    traceback.print_exc(file=sys.stderr)
