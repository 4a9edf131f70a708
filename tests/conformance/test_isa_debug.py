"""``isa-debugcon``, ``isa-debug-exit``, ``-debugcon``, ``-chardev`` and ``-global``
against real QEMU 7.2: the command line's errors byte for byte, the monitor's
answers, and what a guest sees and causes (the bytes in the debugcon file, the
exit status).

The guest side: QEMU runs the IN/OUT sequence as a 16-bit firmware image
(``-bios``), pyqom as flat 64-bit code in its Unicorn CPU (``VM.run``); the
port semantics under test are the same in both modes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyqom_side import PyqomQmp
from qemu_oracle import QemuOracle, qemu_or_skip

from plugins.monitor import VmControl
from plugins.services import GuestExit
from pyqom import VM

BASE = ["-machine", "pc", "-m", "128M", "-display", "none", "-nodefaults", "-S"]


def _run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(argv, capture_output=True, timeout=30, env=env, cwd=cwd,
                          input=b'{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n')
    return (done.returncode, done.stdout.decode(errors="surrogateescape"),
            done.stderr.decode(errors="surrogateescape"))


@pytest.mark.parametrize("args", [
    ["-device", "isa-debugcon"],
    ["-device", "isa-debugcon,chardev="],
    ["-device", "isa-debugcon,chardev=nonexistent"],
    ["-device", "isa-debugcon,iobase=abc"],
    ["-device", "isa-debugcon,iobase=-1"],
    ["-device", "isa-debugcon,iobase=0x100000000"],
    ["-device", "isa-debugcon,readback=xyz"],
    ["-chardev", "null,id=c0", "-device", "isa-debugcon,chardev=c0,bogus=1"],
    ["-chardev", "null,id=c0", "-device", "isa-debugcon,chardev=c0",
     "-device", "isa-debugcon,chardev=c0,iobase=0x402"],
    ["-device", "isa-debug-exit,iobase=abc"],
    ["-device", "isa-debug-exit,iosize=-1"],
    ["-device", "isa-debug-exit,bogus=1"],
    ["-chardev", "null"],
    ["-chardev", "bogus,id=x"],
    ["-chardev", "file,id=x"],
    ["-chardev", "file,id=x,path=/nonexistent/d/x"],
    ["-chardev", "null,id=x", "-chardev", "null,id=x"],
    ["-chardev", "null,id=x,foo=1"],
    ["-chardev", "stdio,id=x", "-qmp", "stdio"],
    ["-debugcon", "bogus"],
    ["-debugcon", "file:/nonexistent/dir/x"],
    ["-debugcon", "null", "-debugcon", "null"],
    ["-debugcon", "null", "-chardev", "null,id=debugcon"],
    ["-debugcon", "null", "-device", "isa-debugcon,id=debugcon"],
    ["-debugcon", "null", "-device", "isa-debugcon,chardev=debugcon,iobase=0x402"],
    ["-debugcon"],
    ["-global", "isa-debugcon.foo=1", "-chardev", "null,id=c", "-device",
     "isa-debugcon,chardev=c"],
    ["-device", "isa-debugcon,chardev=c0,help"],
    ["-device", "isa-debug-exit,help"],
], ids=lambda args: " ".join(args))
def test_command_line_answers_as_qemu(args: list[str], tmp_path: Path) -> None:
    qemu = _run([qemu_or_skip(), "-accel", "tcg", *BASE, *args], tmp_path)
    mine = _run([sys.executable, "-m", "pyqom", *BASE, *args], tmp_path)
    assert (mine[0], mine[1], mine[2].replace("pyqom: ", "PROG: ")) == (
        qemu[0], qemu[1], qemu[2].replace("qemu-system-x86_64: ", "PROG: "))


MONITOR_ARGS = ["-chardev", "null,id=c0", "-device", "isa-debugcon,chardev=c0,id=dc",
                "-device", "isa-debug-exit,id=de,iobase=0xf4,iosize=4",
                "-global", "isa-debugcon.readback=0x41"]
MONITOR_STEPS: list[tuple[str, dict[str, object]]] = [
    ("device-list-properties", {"typename": "isa-debugcon"}),
    ("device-list-properties", {"typename": "isa-debug-exit"}),
    ("qom-list-properties", {"typename": "isa-debugcon"}),
    ("qom-get", {"path": "/machine/peripheral/dc", "property": "iobase"}),
    ("qom-get", {"path": "/machine/peripheral/dc", "property": "readback"}),
    ("qom-get", {"path": "/machine/peripheral/dc", "property": "chardev"}),
    ("qom-get", {"path": "/machine/peripheral/de", "property": "iosize"}),
    ("qom-set", {"path": "/machine/peripheral/de", "property": "iobase", "value": 1}),
    ("qom-set", {"path": "/machine/peripheral/dc", "property": "readback", "value": 1}),
    ("device_add", {"driver": "isa-debugcon", "chardev": "c0"}),
    ("device_add", {"driver": "isa-debug-exit", "iobase": -1}),
    ("device_del", {"id": "de"}),
    ("device_del", {"id": "dc"}),
    ("human-monitor-command", {"command-line": "device_add isa-debug-exit"}),
    ("human-monitor-command", {"command-line": "device_del dc"}),
]


def test_monitor_answers_as_qemu() -> None:
    oracle = QemuOracle("-m", "128M", *MONITOR_ARGS)
    vm = VM.from_args(["-machine", "pc", "-m", "128M", *MONITOR_ARGS], autoload=False)
    mine = PyqomQmp(VmControl(vm))
    try:
        for command, arguments in MONITOR_STEPS:
            assert mine.execute(command, arguments) == oracle.execute(command, arguments), \
                command
        mtree = {"command-line": "info mtree"}
        theirs = oracle.execute("human-monitor-command", mtree)["return"].splitlines()
        ours = mine.execute("human-monitor-command", mtree)["return"].splitlines()
        assert [line for line in theirs if "isa-debug" in line] == \
            [line for line in ours if "isa-debug" in line]
    finally:
        mine.close()
        oracle.close()
        vm.close()


# The guest: the same port accesses in both programs.
BODY = r"""
    mov $0xe9, %dx
    mov $'H', %al
    out %al, %dx
    mov $'i', %al
    out %al, %dx
    mov $'\n', %al
    out %al, %dx
    in %dx, %al
    out %al, %dx
    mov $0x4241, %ax
    out %ax, %dx
    mov $0x46454443, %eax
    out %eax, %dx
    in %dx, %ax
    out %al, %dx
    mov %ah, %al
    out %al, %dx
    in %dx, %eax
    out %al, %dx
    shr $8, %eax
    out %al, %dx
    mov $'Z', %al
    out %al, $0xe9
    mov $0x501, %dx
    in %dx, %al
    mov $0xe9, %dx
    out %al, %dx
    mov $0xe8, %dx
    in %dx, %ax
    mov $0xe9, %dx
    out %al, %dx
    mov %ah, %al
    out %al, %dx
    mov $0xe8, %dx
    mov $0x4a49, %ax
    out %ax, %dx
    mov $0xe9, %dx
    mov $'\n', %al
    out %al, %dx
    mov $EXITPORT, %dx
    mov $EXITVALUE, %eax
    out EXITREG, %dx
"""


def _assemble(source: str, tmp_path: Path, name: str, *, bios: bool) -> bytes:
    for tool in ("as", "ld", "objcopy"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian: binutils); CI installs it")
    asm, obj, out = (tmp_path / f"{name}.S", tmp_path / f"{name}.o", tmp_path / f"{name}.bin")
    asm.write_text(source)
    if bios:
        subprocess.run(["as", "--32", "-o", obj, asm], check=True)
        subprocess.run(["ld", "-m", "elf_i386", "-Ttext", "0", "--oformat", "binary",
                        "-o", out, obj], check=True)
    else:
        subprocess.run(["as", "--64", "-o", obj, asm], check=True)
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", obj, out], check=True)
    return out.read_bytes()


def _body(port: int, value: int, width: int) -> str:
    register = {1: "%al", 2: "%ax", 4: "%eax"}[width]
    return (BODY.replace("EXITPORT", hex(port)).replace("EXITVALUE", hex(value))
            .replace("EXITREG", register))


@pytest.mark.parametrize(("port", "value", "width", "device"), [
    (0x501, 0x21, 1, "isa-debug-exit"),
    (0x502, 0x21, 1, "isa-debug-exit"),
    (0x501, 0x1234, 2, "isa-debug-exit"),
    (0x501, 0x12345678, 4, "isa-debug-exit"),
    (0x501, 0x7F, 1, "isa-debug-exit"),
    (0xF7, 0x10, 1, "isa-debug-exit,iobase=0xf4,iosize=4"),
    (0x503, 0x21, 1, "isa-debug-exit"),          # outside the region: no exit
])
def test_guest_output_and_exit_status_are_qemus(port, value, width, device,
                                                tmp_path: Path) -> None:
    qemu = qemu_or_skip()
    body = _body(port, value, width)
    bios = _assemble(".code16\nstart:\n    cli\n" + body + "1:\n    hlt\n    jmp 1b\n"
                     ".org 0xfff0\n    ljmp $0xf000, $start\n.org 0x10000\n",
                     tmp_path, "bios", bios=True)
    (tmp_path / "bios.img").write_bytes(bios)
    theirs_file = tmp_path / "qemu.out"
    try:
        done = subprocess.run(
            [qemu, "-machine", "pc", "-accel", "tcg", "-nodefaults", "-display", "none",
             "-bios", str(tmp_path / "bios.img"), "-debugcon", f"file:{theirs_file}",
             "-device", device], capture_output=True, timeout=5)
        qemu_status: int | None = done.returncode
    except subprocess.TimeoutExpired:
        qemu_status = None                    # still running at HLT: no exit
    code = _assemble(".code64\n" + body + "    hlt\n", tmp_path, "guest", bios=False)
    mine_file = tmp_path / "pyqom.out"
    options = dict(item.split("=") for item in device.split(",")[1:])
    with VM("128M", chardevs={"debugcon": f"file:{mine_file}"}, autoload=False,
            devices=[{"driver": "isa-debug-exit", **options},
                     {"driver": "isa-debugcon", "id": "debugcon", "chardev": "debugcon"}]
            ) as vm:
        try:
            vm.run(code, load_at=0x1000)
            my_status: int | None = None
        except GuestExit as exit_request:
            my_status = exit_request.status & 0xFF
    assert my_status == qemu_status
    assert mine_file.read_bytes() == theirs_file.read_bytes()
    assert mine_file.read_bytes().startswith(b"Hi\n")
