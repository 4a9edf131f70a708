"""Guest memory at the monitor with a booted guest, against real QEMU 7.2: HMP
``x``/``xp`` (formats, sizes, the sticky last format, expressions and their
errors), ``pmemsave``/``memsave`` over HMP and QMP (the files' bytes too), and
their refusals; the raw reply lines are compared.  The guest is stopped first,
so both programs show the same memory."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from guest_kernel import booted_with_qmp_stdio, build_guest, pyqom_command, pyqom_env, transcript
from qemu_oracle import qemu_or_skip

STEPS = [
    "xp /4xw 0x9500", "x /2xg 0x9000", "xp /2xg 0x9000+2*8", "xp /2xg (1", "xp /2xg zz", "xp",
    "xp /3 0x9500", "xp /c 0x9500", "xp 0x9500", "xp /s 0x9500", "xp /20xb 0x9500",
    "xp /5dh 0x9500", "xp /3ow 0x9500", "xp /3ug 0x9500", "xp /2dg 0x9500", "xp /8c 0x155000",
    "x /3xh 0xa00000", "x /2xg 0x100000", "xp /2xg 0x200000000", "xp /2xw 'A'+0x9500",
    "xp /2xw 10/0", "xp /2xw 0x9500 junk", "xp /2xw 010+0x9500", "xp /2xw ~0x9500+0x9500",
    "xp /2xw $nosuch", "xp /2xw (0x9500|3)^1", "xp /xg 0x7fff000",
    "pmemsave 0x9500 0x100000000 x", "pmemsave 0x9500 16 pm-hmp.bin",
    "memsave 0x9500 -1 x", "memsave 0x9000 24 m-hmp.bin",
]
QMP_STEPS = [
    {"execute": "pmemsave", "arguments": {"val": 0x9500, "size": 88, "filename": "pm.bin"}},
    {"execute": "pmemsave", "arguments": {"val": 1 << 33, "size": 16, "filename": "pm-un.bin"}},
    {"execute": "memsave", "arguments": {"val": 0x9500, "size": 88, "filename": "m.bin"}},
    {"execute": "memsave", "arguments": {"val": 1 << 33, "size": 16, "filename": "m-un.bin"}},
    {"execute": "memsave", "arguments": {"val": 0, "size": 16, "filename": "x",
                                         "cpu-index": 1}},
    {"execute": "pmemsave", "arguments": {"val": 0, "size": 16, "filename": "/nonexistent/x"}},
    {"execute": "pmemsave", "arguments": {"val": 0, "size": 16}},
]
FILES = ["pm-hmp.bin", "m-hmp.bin", "pm.bin", "pm-un.bin", "m.bin", "m-un.bin"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_guest(tmp_path_factory.mktemp("guest"))


def _session(program: list[str], kernel: str, work: Path) -> tuple[list[bytes], dict]:
    work.mkdir()
    out = work / "guest.out"
    process = subprocess.Popen(
        [*program, "-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults",
         "-m", "128M", "-kernel", kernel, "-debugcon", f"file:{out}", "-global",
         "isa-debugcon.iobase=0x402", "-qmp", "stdio"],
        cwd=work, env=pyqom_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdout.readline()
        lines = []

        def send(request: dict) -> None:
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
            while True:
                line = process.stdout.readline()
                assert line, process.stderr.read() if process.stderr else ""
                if b'"event"' not in line:
                    lines.append(line)
                    return

        send({"execute": "qmp_capabilities"})
        deadline = time.monotonic() + 30
        while b"ready\n" not in transcript(out) and time.monotonic() < deadline:
            time.sleep(0.01)
        send({"execute": "stop"})
        for step in STEPS:
            send({"execute": "human-monitor-command", "arguments": {"command-line": step}})
        for request in QMP_STEPS:
            send(request)
        send({"execute": "quit"})
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    files = {name: (work / name).read_bytes() if (work / name).exists() else None
             for name in FILES}
    return lines, files


def test_memory_commands_answer_as_qemu(kernel: str, tmp_path: Path) -> None:
    qemu = qemu_or_skip()
    theirs = _session([qemu], kernel, tmp_path / "qemu")
    mine = _session(pyqom_command(), kernel, tmp_path / "pyqom")
    steps = ["qmp_capabilities", "stop", *STEPS, *map(json.dumps, QMP_STEPS), "quit"]
    differences = [(step, actual, expected)
                   for step, expected, actual in zip(steps, theirs[0], mine[0], strict=True)
                   if actual != expected]
    assert differences == []
    assert mine[1] == theirs[1]
    assert theirs[1]["pm.bin"][:4] == b"\x4f\x02\x00\x00"   # the Multiboot info's flags


def test_with_minus_s_only_the_kernel_is_in_ram_before_cont(kernel: str, tmp_path: Path) -> None:
    """QEMU loads an ELF kernel's segments at machine reset, and its option ROM
    writes the Multiboot info and memory map when the guest first runs."""
    qemu = qemu_or_skip()
    saved = {}
    for name, program in (("qemu", [qemu]), ("pyqom", pyqom_command())):
        work = tmp_path / name
        work.mkdir()
        requests = [{"execute": "qmp_capabilities"},
                    {"execute": "pmemsave", "arguments": {"val": 0x100000, "size": 4096,
                                                          "filename": "kernel.bin"}},
                    {"execute": "pmemsave", "arguments": {"val": 0x9000, "size": 4096,
                                                          "filename": "info.bin"}},
                    {"execute": "quit"}]
        done = subprocess.run(
            [*program, "-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults",
             "-S", "-m", "128M", "-kernel", kernel, "-qmp", "stdio"],
            input=b"".join(json.dumps(r).encode() + b"\n" for r in requests), cwd=work,
            env=pyqom_env(), capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
        saved[name] = ((work / "kernel.bin").read_bytes(), (work / "info.bin").read_bytes())
    assert saved["pyqom"] == saved["qemu"]
    kernel_bytes, info = saved["qemu"]
    assert kernel_bytes[:4] == b"\x02\xb0\xad\x1b"   # an ELF kernel's segments: from reset on
    assert info == bytes(4096)                       # the info block: once the guest runs


def _registers(program: list[str], kernel: str, work: Path) -> str:
    work.mkdir()
    out = work / "guest.out"
    with booted_with_qmp_stdio(
            program, ["-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults",
                      "-m", "128M,slots=2,maxmem=1G", "-kernel", kernel, "-append", "sci",
                      "-debugcon", f"file:{out}", "-global", "isa-debugcon.iobase=0x402"],
            out, cwd=work) as process:
        assert process.stdin is not None and process.stdout is not None
        time.sleep(0.2)                       # halted in its sti; hlt loop by now
        process.stdin.write(b'{"execute":"stop"}\n{"execute":"human-monitor-command",'
                            b'"arguments":{"command-line":"info registers"}}\n'
                            b'{"execute":"quit"}\n')
        process.stdin.flush()
        replies = []
        while len(replies) < 2:
            line = process.stdout.readline()
            assert line
            if b'"event"' not in line:
                replies.append(json.loads(line))
        process.wait(30)
    return replies[1]["return"]


def test_info_registers_is_qemus(kernel: str, tmp_path: Path) -> None:
    """The guest halted in its ``sti; hlt`` loop: every register as QEMU prints
    it.  Declared normalisation: a value pointing into the ACPI tables (their
    addresses differ, see the README) is blanked on both sides."""
    qemu = qemu_or_skip()

    def normalised(text: str) -> str:
        return re.sub(r"=000000000[0-9a-f]{7}\b",
                      lambda m: "=ACPI" if 0x7FE0000 <= int(m.group(0)[1:], 16) < 0x8000000
                      else m.group(0), text)

    theirs = _registers([qemu], kernel, tmp_path / "qemu")
    mine = _registers(pyqom_command(), kernel, tmp_path / "pyqom")
    assert theirs.startswith("\r\nCPU#0\r\nRAX=")
    assert normalised(mine).splitlines() == normalised(theirs).splitlines()
