"""``pyqom``: a drop-in for ``qemu-system-x86_64`` on the memory-hotplug surface.

QEMU's start-up, in its order:

1. every option is parsed as it comes (``-m``, ``-object`` and ``-device``
   syntax, ids, duplicate ids); errors carry the option's text:
   ``pyqom: -m 1GB: Parameter 'size' expects ...``;
2. ``-object`` backends are created (errors without the option text);
3. the machine: ``-m`` fix-ups, ``machine_set_mem``, board init (no option text);
4. ``-device`` cold plug (errors with the option text);
5. the machine is ready; the monitors start answering.

Any error prints ``pyqom: <message>`` (hint lines follow) and exits 1 before
a monitor answers.  Options pyqom does not support are refused in QEMU's
words, never ignored.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from plugins.command_line import CommandLine, StartupError, parse_command_line, start
from plugins.vm import VM

PROG = "pyqom"


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run ``pyqom``; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)

    def warn(text: str) -> None:
        err.write(f"{PROG}: {text}\n")

    vm = VM.empty()
    try:
        line = parse_command_line(args, warn, vm.tree.registry, PROG)
        if line.help_text is not None:
            out.write(line.help_text)
            out.flush()
            if line.help_error is not None:
                warn(line.help_error)
            vm.close()
            return 0
        start(vm, line, warn)
    except StartupError as error:
        vm.close()
        if error.monitors_open:
            out.write(stdio_monitor_greeting(line))
            out.flush()
        err.write(error.render(PROG))
        return 1
    try:
        return serve(vm, line, err)
    finally:
        vm.close()


def stdio_monitor_greeting(line: CommandLine) -> str:
    """What a stdio monitor has printed when board init or ``-device`` fails.

    QEMU 7.2 opens its monitors (``qemu_create_late_backends``) before the
    board and the ``-device`` options: the QMP greeting, or the HMP banner
    and prompt, is on stdout before the error on stderr.
    """
    from plugins.monitor.hmp import banner
    from plugins.monitor.qmp import encode, greeting

    if "stdio" in line.qmp:
        return encode(greeting()).decode("ascii")
    if "stdio" in line.monitors:
        return banner()
    return ""


def serve(vm: VM, line: CommandLine, err: TextIO) -> int:
    """Serve the monitors until ``quit``; SIGINT or SIGTERM end the run too, as in QEMU."""
    from plugins.monitor import run_monitors

    async def run() -> int:
        loop = asyncio.get_running_loop()
        if line.qmp or line.monitors:
            waiting: asyncio.Future[int | None] = asyncio.ensure_future(run_monitors(
                vm, qmp=line.qmp, hmp=line.monitors, paused=line.paused, prog=PROG))
        else:
            # Without monitors QEMU runs until it is signalled; so does pyqom.
            waiting = asyncio.ensure_future(asyncio.Event().wait())
        signalled: list[int] = []

        def on_signal(signum: int) -> None:
            signalled.append(signum)
            waiting.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            return await waiting or 0
        except asyncio.CancelledError:
            if signalled:
                err.write(f"{PROG}: terminating on signal {signalled[0]}\n")
                err.flush()
            return 0

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
