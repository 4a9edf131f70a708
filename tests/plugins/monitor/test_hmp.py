"""HMP output byte for byte (expected strings recorded from QEMU 7.2.22)."""

from __future__ import annotations

import pytest

from plugins.monitor import HmpSession, VmControl


def _run(control: VmControl, line: str, stderr: list[str] | None = None,
         hosted: bool = True) -> str:
    session = HmpSession(control, hosted=hosted,
                         stderr=(stderr.append if stderr is not None else None))
    session.run_line(line)
    return session.take_output()


@pytest.mark.parametrize(("line", "expected"), [
    ("info status", "VM status: paused (prelaunch)\r\n"),
    ("help quit", "quit|q  -- quit the emulator\r\n"),
    ("help info status", "info status  -- show the current VM status (running|paused)\r\n"),
    ("help nosuch", "unknown command: 'nosuch'\r\n"),
    ("help info nosuch", "unknown command: 'info nosuch'\r\n"),
    ("nosuch", "unknown command: 'nosuch'\r\n"),
    ("info nosuch", "unknown command: 'info nosuch'\r\n"),
    ("", ""),
    ("   ", ""),
    ("qom-set", 'qom-set: string expected\r\nTry "help qom-set" for more information\r\n'),
    ("qom-get /machine", 'qom-get: string expected\r\nTry "help qom-get" for more information\r\n'),
    ("device_del", 'device_del: string expected\r\nTry "help device_del" for more information\r\n'),
    ("quit x", 'quit|q: extraneous characters at the end of line\r\nTry "help quit" for more information\r\n'),
    ("info memdev x", 'memdev: extraneous characters at the end of line\r\nTry "help info memdev" for more information\r\n'),
    ("object_del a b", 'object_del: extraneous characters at the end of line\r\nTry "help object_del" for more information\r\n'),
    ("object_add", 'object_add: string expected\r\nTry "help object_add" for more information\r\n'),
    ("qom-list /objects extra", 'qom-list: extraneous characters at the end of line\r\nTry "help qom-list" for more information\r\n'),
    ("qom-set -x /a b c", 'qom-set: unsupported option -x\r\nTry "help qom-set" for more information\r\n'),
    ("cont extra", 'cont|c: extraneous characters at the end of line\r\nTry "help cont" for more information\r\n'),
    ("device_add", "Error: Parameter 'driver' is missing\r\n"),
    ("device_add pc-dimm,help",
     "pc-dimm options:\r\n  addr=<uint64>          -  (default: 0)\r\n  memdev=<link<memory-backend>>\r\n"
     "  node=<uint32>          -  (default: 0)\r\n  size=<uint64>\r\n  slot=<int32>           -  (default: -1)\r\n"),
    ("info memory_size_summary", "base memory: 1073741824\r\nplugged memory: 0\r\n"),
    ("info qom-tree /nosuch", "Path '/nosuch' could not be resolved.\r\n"),
    ("info qom-tree peripheral", "/peripheral (container)\r\n"),
    ('qom-get "/objects/pc.ram" size', "1073741824\r\n"),
    ("qom-get /machine memory",
     '{\r\n    "size": 1073741824,\r\n    "slots": 3,\r\n    "max-size": 4294967296\r\n}\r\n'),
    ("qom-get /objects/pc.ram host-nodes", "[\r\n]\r\n"),
    ("qom-get /objects/pc.ram policy", '"default"\r\n'),
    ("qom-get /nosuch size", "Error: Device '/nosuch' not found\r\n"),
    ("qom-list", "/\r\n"),
    ("qom-list /nosuch", "Error: Device '/nosuch' not found\r\n"),
    ("info numa", "1 nodes\r\nnode 0 cpus: 0\r\nnode 0 size: 1024 MB\r\nnode 0 plugged: 0 MB\r\n"),
    ("object_add memory-backend-ram,id=x,size=1Q", "Error: Parameter 'size' expects size\r\n"),
    ("object_add memory-backend-ram,id=1h,size=1M",
     "Error: Parameter 'id' expects an identifier\r\nIdentifiers consist of letters, digits, "
     "'-', '.', '_', starting with a letter.\r\n"),
    ("object_del nosuch", "Error: object 'nosuch' not found\r\n"),
    ("device_del /objects/pc.ram", "Error: /objects/pc.ram is not a hotpluggable device\r\n"),
    ("info memory-devices", ""),
    ("info memdev",
     "memory backend: pc.ram\r\n  size:  1073741824\r\n  merge: true\r\n  dump: true\r\n"
     "  prealloc: false\r\n  share: false\r\n  reserve: true\r\n  policy: default\r\n"
     "  host nodes: \r\n\r\n"),
])
def test_recorded_output(control: VmControl, line: str, expected: str) -> None:
    assert _run(control, line) == expected


def test_hotplug_and_info_blocks(control: VmControl) -> None:
    assert _run(control, "object_add memory-backend-ram,id=h1,size=1G") == ""
    assert _run(control, "device_add pc-dimm,id=dimm1,memdev=h1") == ""
    assert _run(control, "device_add pc-dimm,id=d2,memdev=h1") == \
        "Error: can't use already busy memdev: h1\r\n"
    assert _run(control, "info memory-devices") == (
        'Memory device [dimm]: "dimm1"\r\n  addr: 0x100000000\r\n  slot: 0\r\n  node: 0\r\n'
        "  size: 1073741824\r\n  memdev: /objects/h1\r\n  hotplugged: true\r\n"
        "  hotpluggable: true\r\n")
    assert _run(control, "device_del dimm1") == ""
    assert _run(control, "object_del h1") == "Error: object 'h1' is in use, can not be deleted\r\n"
    assert _run(control, "info memory_size_summary") == \
        "base memory: 1073741824\r\nplugged memory: 1073741824\r\n"


def test_qom_set_forms(control: VmControl) -> None:
    _run(control, "object_add memory-backend-ram,id=m1,size=1M")
    assert _run(control, "qom-set /objects/m1 merge off") == ""
    assert _run(control, "qom-get /objects/m1 merge") == "false\r\n"
    assert _run(control, "qom-set /objects/m1 merge maybe") == \
        "Error: Parameter 'merge' expects 'on' or 'off'\r\n"
    assert _run(control, "qom-set -j /objects/m1 merge true") == ""
    assert _run(control, 'qom-set -j /objects/m1 merge "off"') == \
        "Error: Invalid parameter type for 'merge', expected: boolean\r\n"


def test_device_add_bad_id_goes_to_stderr(control: VmControl) -> None:
    stderr: list[str] = []
    assert _run(control, "device_add pc-dimm,id=1d,memdev=m1", stderr) == \
        'Try "help device_add" for more information\r\n'
    assert stderr == ["Parameter 'id' expects an identifier\nIdentifiers consist of letters, "
                      "digits, '-', '.', '_', starting with a letter.\n"]
    # From an interactive HMP monitor QEMU's stderr line carries the program name.
    stderr.clear()
    _run(control, "device_add pc-dimm,id=1d,memdev=m1", stderr, hosted=False)
    assert stderr[0].startswith("pyqom: Parameter 'id' expects an identifier\n")


def test_stop_cont_and_status(control: VmControl) -> None:
    assert _run(control, "cont") == ""
    assert _run(control, "info status") == "VM status: running\r\n"
    assert _run(control, "stop") == ""
    assert _run(control, "info status") == "VM status: paused\r\n"


def test_hmp_connection_banner_prompt_and_quit(control: VmControl) -> None:
    from plugins.monitor import HmpConnection

    out: list[bytes] = []
    connection = HmpConnection(control, out.append)
    connection.start()
    connection.feed(b"info status\r\nqu")
    connection.feed(b"it\n")

    def echo(text: bytes) -> bytes:
        # QEMU's readline redraws the line after every byte typed.
        return b"".join(b"\x1b[D" * (i - 1) + text[:i] + b"\x1b[K"
                        for i in range(1, len(text) + 1))

    # As QEMU 7.2 answers the same bytes (CR and LF each end a line).
    assert b"".join(out) == (b"QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) "
                             + echo(b"info status") + b"\r\nVM status: paused (prelaunch)\r\n"
                             b"(qemu) \r\n(qemu) " + echo(b"quit") + b"\r\n")
    assert connection.finished


#: QEMU 7.2.22's ``object_add memory-backend-ram,help`` (recorded).
RAM_HELP = (
    "memory-backend-ram options:\r\n"
    "  dump=<bool>            - Set to 'off' to exclude from core dump\r\n"
    "  host-nodes=<int>       - Binds memory to the list of NUMA host nodes\r\n"
    "  merge=<bool>           - Mark memory as mergeable\r\n"
    "  policy=<HostMemPolicy> - Set the NUMA policy\r\n"
    "  prealloc-context=<link<thread-context>> - Context to use for creating CPU threads "
    "for preallocation\r\n"
    "  prealloc-threads=<int> - Number of CPU threads to use for prealloc\r\n"
    "  prealloc=<bool>        - Preallocate memory\r\n"
    "  reserve=<bool>         - Reserve swap space (or huge pages) if applicable\r\n"
    "  share=<bool>           - Mark the memory as private to QEMU or shared\r\n"
    "  size=<int>             - Size of the memory region (ex: 500M)\r\n"
    "  x-use-canonical-path-for-ramblock-id=<bool>\r\n")


def test_object_add_help(control: VmControl) -> None:
    assert _run(control, "object_add memory-backend-ram,help") == RAM_HELP
    assert _run(control, "object_add memory-backend-ram,id=x,help") == RAM_HELP
    assert _run(control, "object_add qom-type=memory-backend,help") == RAM_HELP.replace(
        "memory-backend-ram options", "memory-backend options")
    listing = _run(control, "object_add help")
    assert listing.startswith("List of user creatable objects:\r\n")
    assert "  memory-backend-ram\r\n" in listing and "  memory-backend\r\n" not in listing
    assert _run(control, "object_add nosuch,help") == listing
    assert _run(control, "qom-list /objects") == "type (string)\r\npc.ram (child<memory-backend-ram>)\r\n"
