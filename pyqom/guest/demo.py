"""Memory hotplug with a running guest, end to end: ``python -m pyqom.guest.demo``.

Starts ``pyqom`` as a user would start ``qemu-system-x86_64``: pyqom's OSPM
guest booted with ``-kernel``, two empty DIMM slots, the guest's console on
a file and QMP on stdio.  Then, over QMP: a 256 MiB ``memory-backend-ram``
and a ``pc-dimm`` are hot-plugged, the guest onlines and tests the memory
and reports ``_OST`` (``ACPI_DEVICE_OST``), ``device_del`` asks it to let the
DIMM go, it ejects it (``DEVICE_DELETED``), and ``quit`` ends the run.  Every
QMP line sent and received is printed, then what the guest printed.

``--qemu`` runs the same steps on ``qemu-system-x86_64`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from typing import IO, Any

from pyqom.guest import kernel_path

#: how long the demo waits for the guest at each step (seconds)
STEP_TIMEOUT = 30.0


class Qmp:
    """QMP over a child's stdin/stdout, one JSON line at a time, echoed to ``log``."""

    def __init__(self, process: subprocess.Popen[bytes], log: IO[str]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._in, self._out = process.stdin, process.stdout
        self._log = log
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def _line(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([self._out], [], [], wait)[0]:
                raise TimeoutError("no answer from the monitor")
            chunk = os.read(self._out.fileno(), 65536)
            if not chunk:
                raise EOFError("the monitor hung up")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        self._log.write(f"<- {line.decode().rstrip()}\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def greeting(self) -> dict[str, Any]:
        return self._line(time.monotonic() + STEP_TIMEOUT)

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments is not None:
            request["arguments"] = arguments
        text = json.dumps(request)
        self._log.write(f"-> {text}\n")
        self._in.write(text.encode() + b"\n")
        self._in.flush()
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            message = self._line(deadline)
            if "event" in message:
                self.events.append(message)
                continue
            if "error" in message:
                raise RuntimeError(f"{command}: {message['error']['desc']}")
            return message.get("return")

    def wait_for_event(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            for event in self.events:
                if event["event"] == name:
                    self.events.remove(event)
                    return event
            message = self._line(deadline)
            if "event" in message:
                self.events.append(message)


def _wait_for_text(path: str, text: bytes) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        with open(path, "rb") as console:
            if text in console.read():
                return
        time.sleep(0.02)
    raise TimeoutError(f"the guest did not print {text!r}")


def run(program: list[str], out: IO[str]) -> int:
    """The demo on ``program`` (``pyqom`` or ``qemu-system-x86_64``); its exit status."""
    with tempfile.TemporaryDirectory(prefix="pyqom-demo-") as scratch:
        console = os.path.join(scratch, "guest.log")
        argv = [*program, "-machine", "pc", "-accel", "tcg", "-display", "none",
                "-nodefaults", "-m", "128M,slots=2,maxmem=1G", "-kernel", kernel_path(),
                "-debugcon", f"file:{console}", "-global", "isa-debugcon.iobase=0x402",
                "-qmp", "stdio"]
        out.write("$ " + " ".join(argv) + "\n")
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            qmp = Qmp(process, out)
            qmp.greeting()
            qmp.execute("qmp_capabilities")
            _wait_for_text(console, b"ready\n")
            qmp.execute("object-add", {"qom-type": "memory-backend-ram", "id": "mem1",
                                       "size": 256 << 20})
            qmp.execute("device_add", {"driver": "pc-dimm", "id": "dimm1", "memdev": "mem1"})
            qmp.wait_for_event("ACPI_DEVICE_OST")
            qmp.execute("query-memory-devices")
            qmp.execute("device_del", {"id": "dimm1"})
            qmp.wait_for_event("DEVICE_DELETED")
            _wait_for_text(console, b"ejected slot 0\n")   # the guest's last word on it
            qmp.execute("query-memory-devices")
            qmp.execute("quit")
            status = process.wait(STEP_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        with open(console, "rb") as log:
            data = log.read()
        start = data.find(b"pyqom-guest")
        out.write("\nthe guest's console:\n")
        out.write(data[max(start, 0):].decode(errors="replace"))
        return status


def pyqom_program() -> list[str]:
    """``pyqom`` as this Python runs it."""
    return [sys.executable, "-m", "pyqom"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyqom.guest.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qemu", action="store_true",
                        help="run the steps on qemu-system-x86_64 instead of pyqom")
    options = parser.parse_args(argv)
    program = ["qemu-system-x86_64"] if options.qemu else pyqom_program()
    return run(program, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
