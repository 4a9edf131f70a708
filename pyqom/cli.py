"""``pyqom``: a drop-in for ``qemu-system-x86_64`` on the memory-hotplug surface.

QEMU's start-up, in its order:

1. every option is parsed as it comes (``-m``, ``-object`` and ``-device``
   syntax, ids, duplicate ids); errors carry the option's text:
   ``pyqom: -m 1GB: Parameter 'size' expects ...``;
2. the ``-qmp``/``-monitor`` chardevs are opened (bound, listening, connected;
   ``wait=on`` waits here for its first client), errors located;
3. ``-object`` backends are created (errors without the option text);
4. the machine: ``-m`` fix-ups, ``machine_set_mem``, board init (no option text);
5. ``-device`` cold plug (errors with the option text);
6. the machine is ready; the monitors start answering.

Any error prints ``pyqom: <message>`` (hint lines follow) and exits 1 before
a monitor answers.  Options pyqom does not support are refused in QEMU's
words, never ignored.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from plugins.monitor import (
    ChardevError,
    EventLoop,
    Monitors,
    MonitorServer,
    hmp_server,
    qmp_server,
)
from plugins.services import GUEST_CPU, services_of
from pyqom.command_line import CommandLine, StartupError, parse_command_line, start
from pyqom.daemon import Daemon, PidFileError, daemonize, write_pidfile
from pyqom.manager import PluginLoadError
from pyqom.vm import VM

if TYPE_CHECKING:
    from plugins.monitor.record import Recorder

PROG = "pyqom"


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run ``pyqom``; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)

    timestamps: list[bool] = []   # -msg timestamp=on, once the line is parsed

    def warn(text: str) -> None:
        err.write(f"{message_prefix(bool(timestamps))}{PROG}: {text}\n")
        err.flush()

    if args[:1] == ["-x-replay"]:
        from pyqom.replay import replay_main  # a pyqom addition: no machine of its own

        return replay_main(args[1:], out, err)
    try:
        vm = VM.empty()
    except PluginLoadError as error:
        warn(str(error))
        return 1
    servers: list[tuple[MonitorServer, bool]] = []
    recorder: Recorder | None = None
    daemon: Daemon | None = None
    try:
        line = parse_command_line(args, warn, vm.tree.registry, PROG)
        if line.help_text is not None:
            out.write(line.help_text)
            out.flush()
            if line.help_error is not None:
                warn(line.help_error)
            vm.close()
            return 0
        if line.msg_timestamp:
            timestamps.append(True)
        if line.check_config:
            from pyqom.check_config import check_config  # only for -x-check-config

            status = check_config(vm, line, warn, out, err)
            vm.close()
            return status
        if line.prealloc_progress:
            show_prealloc_progress(err)
        if line.daemonize:
            check_daemonizable(line)
            daemon = daemonize()
        if line.pidfile is not None:
            try:
                write_pidfile(line.pidfile)
            except PidFileError as reason:
                raise StartupError(f"cannot create PID file: {reason}") from None
        if line.record is not None:
            recorder = open_recorder(line.record, args)
        servers = open_monitors(line, warn)
        start(vm, line, warn)
    except StartupError as error:
        if recorder is not None:
            recorder.close()
        for server, _ in servers:
            server.close_sockets()
        vm.shutdown_reason = "host-error"
        vm.close()
        if error.monitors_open:
            out.write(stdio_monitor_greeting(line))
            out.flush()
        err.write("".join(f"{message_prefix(bool(timestamps))}{text}\n" if text.startswith(PROG)
                          else f"{text}\n" for text in error.render(PROG).splitlines()))
        return 1
    except Exception as error:  # a plugin's bug: one line naming it, not a traceback
        if recorder is not None:
            recorder.close()
        for server, _ in servers:
            server.close_sockets()
        vm.shutdown_reason = "host-error"
        vm.close()
        warn(f"start-up failed: {type(error).__name__}: {' '.join(str(error).split())}")
        return 1
    if daemon is not None:
        daemon.ready()
    try:
        return serve(vm, line, servers, err, recorder=recorder)
    finally:
        vm.close()


def message_prefix(timestamped: bool) -> str:
    """``-msg timestamp=on``: QEMU's ``real_time_iso8601`` (UTC, microseconds) and
    a space before every error and warning line."""
    if not timestamped:
        return ""
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ ")


def check_daemonizable(line: CommandLine) -> None:
    """What ``-daemonize`` cannot go with, in QEMU's words: a stdio chardev."""
    for (_, _, chardev), where in zip(line.monitors, line.monitor_locations, strict=True):
        if chardev.kind == "stdio":
            raise StartupError("cannot use stdio with -daemonize", location=where)
    for text, spec in line.chardevs:
        if spec.uses_stdio:
            raise StartupError("cannot use stdio with -daemonize", location=f"-chardev {text}")


def open_monitors(line: CommandLine, warn: Callable[[str], None]
                  ) -> list[tuple[MonitorServer, bool]]:
    """Open every ``-qmp``/``-monitor`` chardev in command-line order, before the
    machine, as QEMU creates its chardevs: bind, listen or connect, and for
    ``server=on`` without ``wait=off`` wait for the first client.

    :raises StartupError: QEMU's message, located at the option.
    """
    servers: list[tuple[MonitorServer, bool]] = []
    try:
        for (option, _, chardev), label, where in zip(
                line.monitors, line.monitor_labels, line.monitor_locations, strict=True):
            hmp = option == "-monitor"
            server = hmp_server(chardev) if hmp else qmp_server(chardev)
            server.label = label
            servers.append((server, hmp))

            def info(message: str, where: str = where) -> None:
                warn(f"{where}: {message}")

            try:
                with _signals_kill():
                    server.open(info)
            except ChardevError as failure:
                raise StartupError(failure.lines[0], location=where,
                                   also=failure.lines[1:]) from None
    except BaseException:
        for server, _ in servers:
            server.close_sockets()
        raise
    return servers


def show_prealloc_progress(err: TextIO) -> None:
    """``-x-prealloc-progress``: the ``backends.prealloc`` logger's lines (every 10 %
    of a preallocation of 1 GiB or more) on stderr, as ``pyqom: prealloc: ...``."""
    import logging  # only with this option: logging is off the start-up path

    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    progress = logging.getLogger("backends.prealloc")
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)


@contextlib.contextmanager
def _signals_kill() -> Iterator[None]:
    """While a ``wait=on`` monitor waits for its client, SIGINT kills the process
    without a word, as it kills QEMU there (no traceback)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stdio_monitor_greeting(line: CommandLine) -> str:
    """What a stdio monitor has printed when board init or ``-device`` fails.

    QEMU 7.2 opens its monitors (``qemu_create_late_backends``) before the
    board and the ``-device`` options: the QMP greeting, or the HMP banner
    and prompt, is on stdout before the error on stderr.
    """
    from plugins.monitor.hmp import banner
    from plugins.monitor.qmp import encode, greeting

    for option, _, chardev in line.monitors:
        if chardev.kind == "stdio":
            return encode(greeting()).decode("ascii") if option == "-qmp" else banner()
    return ""


#: the signals that end QEMU cleanly (``termsig_handler``)
TERMINATING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


#: how long a signal may wait for a busy event loop before pyqom ends at once, as
#: QEMU does (commands run on the command thread, so this is the fallback)
SIGNAL_GRACE = 0.5


class SignalWatcher:
    """SIGINT, SIGTERM and SIGHUP with their sender, as QEMU reports them.

    Python's handlers do not see who sent a signal, so the signals are blocked
    and a thread takes them with ``sigwaitinfo`` (threads started later inherit
    the mask), then calls ``callback(signum, sender_pid)`` on the event loop.
    The loop normally takes it at once (commands run on the command thread);
    if it has not within :data:`SIGNAL_GRACE` seconds, the thread prints QEMU's
    message, runs ``emergency`` (the terminal is given back) and ends the
    process with status 0 there and then: QEMU too exits at once when
    signalled during a slow command.  A second signal, once the first was
    taken, ends the process at once the same way (the clean-up is stuck).
    """

    def __init__(self, loop: EventLoop, callback: Callable[[int, int], None],
                 emergency: Callable[[], None], err: TextIO) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, TERMINATING_SIGNALS)
        self._loop = loop
        self._callback = callback
        self._emergency = emergency
        self._err = err
        self._taken = threading.Event()
        threading.Thread(target=self._wait, name="pyqom-signals", daemon=True).start()

    def _deliver(self, signum: int, pid: int) -> None:
        self._taken.set()
        self._callback(signum, pid)

    def _wait(self) -> None:
        while True:
            info = signal.sigwaitinfo(TERMINATING_SIGNALS)
            if self._taken.is_set():
                # A second signal: the clean-up the first one started is stuck
                # (a guest or a command that does not let go); end now.
                self._exit_now(info, say=False)
            try:
                self._loop.call_soon_threadsafe(self._deliver, info.si_signo, info.si_pid)
            except RuntimeError:   # the loop is gone: pyqom is ending already
                self._exit_now(info, say=False)
            if not self._taken.wait(SIGNAL_GRACE):
                self._exit_now(info, say=True)

    def _exit_now(self, info: Any, *, say: bool) -> None:
        with contextlib.suppress(Exception):
            if say:
                self._err.write(f"{PROG}: "
                                f"{termination_message(info.si_signo, info.si_pid)}\n")
                self._err.flush()
            self._emergency()
        os._exit(0)


def _restore_terminals(servers: list[tuple[MonitorServer, bool]]) -> None:
    for server, _ in servers:
        if server.terminal is not None:
            server.terminal.restore()


def termination_message(signum: int, pid: int) -> str:
    """QEMU's ``terminating on signal N[ from pid P (NAME)]``; the name is the
    sender's ``argv[0]``."""
    if pid == 0:
        return f"terminating on signal {signum}"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            name = cmdline.read().split(b"\0")[0].decode(errors="replace") or None
    except OSError:
        name = None
    return f"terminating on signal {signum} from pid {pid} ({name or '<unknown process>'})"


def open_recorder(path: str, argv: Sequence[str]) -> Recorder:
    """``-x-record FILE``: the file is created before the monitors open.

    :raises StartupError: QEMU-style ``Could not open`` line, located at the option.
    """
    from plugins.monitor.record import Recorder  # only with -x-record

    try:
        return Recorder(path, argv)
    except OSError as error:
        raise StartupError(f"Could not open '{path}': {error.strerror}",
                           location=f"-x-record {path}") from None


def serve(vm: VM, line: CommandLine, servers: list[tuple[MonitorServer, bool]],
          err: TextIO, *, recorder: Recorder | None = None) -> int:
    """Serve the monitors until ``quit``; SIGINT, SIGTERM or SIGHUP end the run too,
    as in QEMU: the message on stderr, SHUTDOWN (``host-signal``) to QMP clients,
    exit status 0.  Without monitors pyqom runs until it is signalled, as a
    ``-display none`` QEMU does."""

    loop = EventLoop()
    monitors = Monitors(vm, servers, loop=loop, paused=None, prog=PROG,  # the VM knows (-S)
                        recorder=recorder)
    signalled: list[tuple[int, int]] = []

    def on_signal(signum: int, pid: int) -> None:
        signalled.append((signum, pid))

    # Start-up is over (pyqom.launch held the collector off): what exists now lives
    # as long as the process, so the collector skips it from here on.
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    # The signals stay blocked to the end: one arriving during the clean-up
    # must not interrupt it with a traceback.
    SignalWatcher(loop, on_signal, lambda: _restore_terminals(servers), err)
    guest_exit: list[int] = []

    def on_cpu_event(kind: str, detail: Any) -> None:
        if kind == "exit":
            # isa-debug-exit: QEMU exits at once with the status, no SHUTDOWN event
            guest_exit.append(detail & 0xFF)
        elif kind == "shutdown" and line.no_shutdown:
            # -no-shutdown (QEMU's -action shutdown=pause): SHUTDOWN, then the
            # VM stops in state "shutdown" and pyqom stays
            monitors.control.emit("SHUTDOWN", {"guest": True, "reason": detail})
            if cpu is not None:
                cpu.pause()
            vm.status = "shutdown"
            monitors.control.emit("STOP")
        elif kind == "shutdown":
            # ACPI power-off: the SHUTDOWN event, then the process ends with 0
            monitors.shutdown(detail, guest=True)
        elif kind == "error" and vm.status == "running":
            err.write(f"{PROG}: the guest stopped: {detail}\n")
            err.flush()
            vm.status = "internal-error"
            monitors.control.emit("STOP")

    cpu = services_of(vm.machine).find(GUEST_CPU)
    if cpu is not None:
        cpu.set_event_handler(
            lambda kind, detail: loop.call_soon_threadsafe(on_cpu_event, kind, detail))
    try:
        monitors.start()
        if cpu is not None and vm.status == "running":
            cpu.resume()
        loop.run_until(lambda: monitors.quit_done or bool(signalled) or bool(guest_exit))
        if signalled and not monitors.quit_done and not guest_exit:
            err.write(f"{PROG}: {termination_message(*signalled[0])}\n")
            err.flush()
            monitors.shutdown("host-signal")
    finally:
        monitors.close(linger=not guest_exit)
        loop.close()
    return guest_exit[0] if guest_exit else 0
