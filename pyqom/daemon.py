"""``-daemonize`` and ``-pidfile`` as QEMU 7.2 does them (``os_daemonize``,
``qemu_write_pidfile``, ``os_setup_post``).

:func:`daemonize` forks twice with a new session in between; the first parent
waits on a pipe and exits 0 only when the daemon says its start-up finished
(:meth:`Daemon.ready`), 1 otherwise (the daemon's error went to the original
stderr).  :func:`write_pidfile` creates the file, takes a ``fcntl`` write
lock on it (a second process with the same file fails with QEMU's message)
and writes the pid; the file is removed when pyqom exits.  Both run after the
command line is parsed and before any monitor or backend is opened, as in
QEMU, so the pid file exists before the parent exits.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import sys


class PidFileError(Exception):
    """QEMU's ``cannot create PID file: ...`` reason."""


class Daemon:
    """The daemon side of ``-daemonize``: tells the waiting parent how start-up went."""

    def __init__(self, pipe: int) -> None:
        self._pipe = pipe

    def ready(self) -> None:
        """``os_setup_post``: stdin, stdout and stderr to ``/dev/null``, the working
        directory ``/``, then the parent is told to exit 0."""
        os.chdir("/")
        null = os.open("/dev/null", os.O_RDWR)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        self._tell(0)

    def _tell(self, status: int) -> None:
        if self._pipe < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._pipe, bytes([status]))
        os.close(self._pipe)
        self._pipe = -1


def daemonize() -> Daemon:
    """``os_daemonize``: returns in the daemon; the original process exits with
    the daemon's start-up status (0 once :meth:`Daemon.ready` ran, 1 if it
    ended first)."""
    read_end, write_end = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if os.fork() > 0:
        os.close(write_end)
        while True:
            try:
                status = os.read(read_end, 1)
                break
            except InterruptedError:
                continue
        os._exit(0 if status == b"\0" else 1)
    os.close(read_end)
    os.set_inheritable(write_end, False)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.umask(0o027)
    for signum in (signal.SIGTSTP, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(signum, signal.SIG_IGN)
    return Daemon(write_end)


def write_pidfile(path: str) -> None:
    """``qemu_write_pidfile``: create, lock (held until exit), truncate, write
    ``<pid>\\n``; the file is unlinked at exit, as QEMU's exit notifier does.

    :raises PidFileError: QEMU's reason (``Cannot lock pid file: Resource
        temporarily unavailable`` when another process holds it).
    """
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise PidFileError(f"Could not create '{path}': {os.strerror(err.errno or 0)}"
                               ) from None
        try:
            before = os.fstat(fd)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            raise PidFileError(f"Cannot lock pid file: {os.strerror(err.errno or 0)}"
                               ) from None
        try:
            now = os.stat(path)
        except FileNotFoundError:   # someone removed it meanwhile: lock the new one
            os.close(fd)
            continue
        if now.st_ino == before.st_ino:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        os.unlink(path)
        os.close(fd)
        raise PidFileError("Failed to write pid file") from None
    real = os.path.realpath(path)
    # the descriptor stays open (its lock with it) for the life of the process
    atexit.register(_unlink_quietly, real)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
