"""``pyqom`` start-up: options parsed and refused in QEMU 7.2's words, exit 1."""

from __future__ import annotations

import io

import pytest

from pyqom.cli import PROG, main

HINT = ("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
        "and exabytes, respectively.\n")
IDENT = "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n"
BASE = ["-machine", "pc", "-display", "none", "-nodefaults", "-m", "1G,slots=3,maxmem=4G"]


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _no_third_party(monkeypatch):
    monkeypatch.setenv("PYQOM_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.mark.parametrize(("args", "stderr"), [
    (["-m", "1G,foo=1"], "-m 1G,foo=1: Invalid parameter 'foo'\n"),
    (["-m", "1GB"], "-m 1GB: Parameter 'size' expects a non-negative number below 2^64\n" + HINT),
    (["-m", "1.5"], "-m 1.5: Parameter 'size' expects a non-negative number below 2^64\n" + HINT),
    (["-m", "1G,slots=abc,maxmem=2G"], "-m 1G,slots=abc,maxmem=2G: Parameter 'slots' expects a number\n"),
    (["-m", "1G,maxmem=16E"], "-m 1G,maxmem=16E: Value '16E' is out of range for parameter 'maxmem'\n"),
    (["-m", "1G,maxmem=512M"], "invalid value of maxmem: maximum memory size (0x20000000) must be "
     "at least the initial memory size (0x40000000)\n"),
    (["-m", "1G,slots=2,maxmem=1G"], "invalid value of maxmem: memory slots were specified but "
     "maximum memory size (0x40000000) is equal to the initial memory size (0x40000000)\n"),
    (["-m", "1G,slots=2"], "slots specified but no max-size\n"),
    (["-m", "1G,slots=257,maxmem=2G"], "unsupported amount of memory slots: 257\n"),
    (["-m", "1G,slots=3,maxmem=4294967297"],
     "maximum memory size must by aligned to multiple of 4096 bytes\n"),
    (["-machine", "pc-i440fx-2.0", "-m", "1G,slots=3,maxmem=4G"],
     "\"-memory 'slots|maxmem'\" is not supported by: pc-i440fx-2.0\n"),
    (["-m", "1G,slots=3,maxmem=1T"],
     "Address space limit 0xffffffffff < 0x200ffffffff phys-bits too low (40)\n"),
    (["-frobnicate"], "-frobnicate: invalid option\n"),
    (["-machine", "pc,foo=1"], "Property 'pc-i440fx-7.2-machine.foo' not found\n"),
    (["-machine", "nosuch"], "unsupported machine type\nUse -machine help to list supported machines\n"),
    (["-cpu", "qemu64,phys-bits=60"], "phys-bits should be between 32 and 52  (but is 60)\n"),
    (["-m"], "-m: requires an argument\n"),
])
def test_memory_and_board_errors(args, stderr):
    assert run(*args) == (1, "", f"{PROG}: {stderr}")


@pytest.mark.parametrize(("extra", "stderr"), [
    (["-object", "memory-backend-ram,id=m1,size=1M,dump=maybe"],
     "-object memory-backend-ram,id=m1,size=1M,dump=maybe: Parameter 'dump' expects 'on' or 'off'\n"),
    (["-object", "memory-backend-ram,id=m1,size=1M,prealloc-threads=-1"],
     "-object memory-backend-ram,id=m1,size=1M,prealloc-threads=-1: Parameter "
     "'prealloc-threads' expects a uint64 value\n"),
    (["-object", "memory-backend-ram,id=m1,size=1M,prealloc-threads=0"],
     "property 'prealloc-threads' of memory-backend-ram doesn't take value '0'\n"),
    (["-object", "memory-backend-ram,id=m1,size=1M,foo=1"],
     "-object memory-backend-ram,id=m1,size=1M,foo=1: Invalid parameter 'foo'\n"),
    (["-object", "memory-backend-ram,id=m1,size=1M,policy=bind"],
     "host-nodes must be set for policy bind\n"),
    (["-object", "memory-backend-ram,id=m1,size=1Q"],
     "-object memory-backend-ram,id=m1,size=1Q: Parameter 'size' expects a size value\n"),
    (["-object", "memory-backend-ram,id=m1"],
     "-object memory-backend-ram,id=m1: Parameter 'size' is missing\n"),
    (["-object", "id=m1,size=1M"], "-object id=m1,size=1M: Parameter 'qom-type' is missing\n"),
    (["-object", "nosuch,id=m1"],
     "-object nosuch,id=m1: Parameter 'qom-type' does not accept value 'nosuch'\n"),
    (["-object", "memory-backend-ram,id=1m,size=1Q"],
     "-object memory-backend-ram,id=1m,size=1Q: Parameter 'id' expects an identifier\n" + IDENT),
    (["-object", "memory-backend-ram,id=pc.ram,size=1M"],
     "object name 'pc.ram' is reserved for the default RAM backend, it can't be used for any "
     "other purposes. Change the object's 'id' to something else\n"),
    (["-object", '{"qom-type":"memory-backend-ram","id":"m1","size":"1M"}'],
     '-object {"qom-type":"memory-backend-ram","id":"m1","size":"1M"}: '
     "Parameter 'size' expects uint64\n"),
    (["-object", '{"qom-type":"memory-backend-ram","id":"1m","size":1048576}'],
     "Parameter 'id' expects an identifier\n" + IDENT),
    (["-object", "memory-backend-ram,id=m1,size=1M", "-object", "memory-backend-ram,id=m1,size=1M"],
     "-object memory-backend-ram,id=m1,size=1M: Duplicate ID 'm1' for object\n"),
    (["-device", "pc-dimm,id=d1"], "-device pc-dimm,id=d1: 'memdev' property must be set\n"),
    (["-device", "nosuch"], "-device nosuch: 'nosuch' is not a valid device model name\n"),
    (["-device", "pc-dimm,id=d1,memdev=m1"], "-device pc-dimm,id=d1,memdev=m1: Device 'm1' not found\n"),
    (["-object", "memory-backend-ram,id=m1,size=128M", "-device", "pc-dimm,id=d1,memdev=m1,slot=7"],
     "-device pc-dimm,id=d1,memdev=m1,slot=7: invalid slot number 7, valid range is [0-2]\n"),
    (["-object", "memory-backend-ram,id=m1,size=128M", "-device", "pc-dimm,id=1d,memdev=m1"],
     "-device pc-dimm,id=1d,memdev=m1: Parameter 'id' expects an identifier\n" + IDENT),
    (["-object", "memory-backend-ram,id=m1,size=128M",
      "-device", '{"driver":"pc-dimm","id":"d1","memdev":"m1","slot":"1"}'],
     '-device {"driver":"pc-dimm","id":"d1","memdev":"m1","slot":"1"}: '
     "Invalid parameter type for 'slot', expected: integer\n"),
    (["-object", "memory-backend-ram,id=m1,size=128M", "-device", "pc-dimm,id=d1,memdev=m1",
      "-device", "pc-dimm,id=d1,memdev=m1"],
     "-device pc-dimm,id=d1,memdev=m1: Duplicate ID 'd1' for device\n"),
])
def test_object_and_device_errors(extra, stderr):
    assert run(*BASE, *extra) == (1, "", f"{PROG}: {stderr}")


def test_version_and_help():
    status, out, _ = run("-version")
    assert status == 0 and out.startswith("QEMU emulator version 7.2.22 (pyqom")
    status, out, _ = run("-h")
    assert status == 0 and "-m [size=]megs[,slots=n,maxmem=size]" in out


def test_hex_size_warning_goes_to_stderr_and_start_up_goes_on(monkeypatch):
    # Stop right after start-up: no monitor, so serve() would wait for a signal.
    monkeypatch.setattr("pyqom.cli.serve", lambda vm, line, servers, err, **options: 0)
    status, _, err = run("-m", "0x400")
    assert status == 0
    assert err == (f"{PROG}: warning: Using a multiplier suffix on hex numbers is deprecated: "
                   "0x400M\n")


@pytest.mark.parametrize(("monitor", "greeting"), [
    (["-qmp", "stdio"], '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, '
                        '"package": "pyqom 0.1.0"}, "capabilities": ["oob"]}}\r\n'),
    (["-monitor", "stdio"], "QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) "),
])
def test_board_and_device_errors_come_after_the_stdio_monitor_greeting(monitor, greeting):
    # QEMU 7.2 opens its monitors before board init and -device: their
    # greeting is on stdout, then the error; option-parsing errors come first.
    assert run(*BASE, "-device", "nosuch", *monitor) == (
        1, greeting, f"{PROG}: -device nosuch: 'nosuch' is not a valid device model name\n")
    assert run("-m", "1G,slots=257,maxmem=2G", *monitor) == (
        1, greeting, f"{PROG}: unsupported amount of memory slots: 257\n")
    assert run("-m", "1G,slots=2", *monitor) == (
        1, "", f"{PROG}: slots specified but no max-size\n")
    assert run("-m", "1G,slots=257,maxmem=2G") == (
        1, "", f"{PROG}: unsupported amount of memory slots: 257\n")


def test_the_launcher_holds_the_collector_off_only_while_pyqom_starts(monkeypatch, capsys) -> None:
    import gc

    from pyqom import launch

    seen: list[bool] = []
    monkeypatch.setattr("sys.argv", ["pyqom", "-version"])
    monkeypatch.setattr("pyqom.cli.parse_command_line",
                        _recording(seen, gc.isenabled, "pyqom.cli.parse_command_line"))
    assert gc.isenabled()
    assert launch.main() == 0
    assert seen == [False]          # off while starting
    assert gc.isenabled()           # and given back
    assert "QEMU emulator version 7.2.22" in capsys.readouterr().out


def _recording(seen, probe, name):
    import importlib

    module, _, attribute = name.rpartition(".")
    original = getattr(importlib.import_module(module), attribute)

    def wrapper(*args, **kwargs):
        seen.append(probe())
        return original(*args, **kwargs)

    return wrapper


def test_a_plugin_failing_at_machine_init_is_one_line_not_a_traceback(monkeypatch, capsys) -> None:
    from plugins import hookimpl
    from pyqom import cli

    class Broken:
        @hookimpl
        def qom_machine_init(self, machine) -> None:
            raise RuntimeError("the device is\nbroken")

    real_empty = cli.VM.empty
    monkeypatch.setattr(cli.VM, "empty", classmethod(
        lambda cls, **kw: real_empty(plugins=[Broken()], autoload=False)))
    assert cli.main(["-m", "128M", "-display", "none", "-nodefaults"]) == 1
    assert capsys.readouterr().err == \
        "pyqom: start-up failed: RuntimeError: the device is broken\n"
