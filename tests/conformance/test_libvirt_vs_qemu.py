"""What libvirt asks of its emulator, asked of pyqom and of real QEMU 7.2.

The same command line (no ``-accel`` added: the accelerator options are part
of what is compared) and the same QMP lines on stdio go to both; the exit
status, stderr (program names and ``-msg`` timestamps made the same) and
stdout's bytes must match.  Where pyqom has less than QEMU (machine types, CPU
models, command-line options, QMP commands), what it lists must be what QEMU
lists for the same things: ``query-machines`` and ``query-cpu-definitions``
entries, ``query-command-line-options`` parameters, and ``query-qmp-schema``,
whose format and name masking are QEMU's and whose commands take the
arguments QEMU's take.  Also ``-pidfile``'s lock (pyqom and QEMU exclude each
other), ``-daemonize`` and ``-no-shutdown``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from guest_kernel import CONSOLE, build_guest, connect_qmp, pyqom_env
from qemu_oracle import QemuOracle, qemu_or_skip
from test_processes import _array_entries, _canonical, _lines

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = re.compile(r"^(?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z )?"
                     r"(qemu-system-x86_64|pyqom): ", re.MULTILINE)
#: libvirt's probe command line (less its -qmp, -pidfile and -daemonize)
PROBE = ("-S", "-no-user-config", "-nodefaults", "-nographic", "-machine", "none")


def _qmp(command: str, arguments: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"execute": command}
    if arguments is not None:
        message["arguments"] = arguments
    return json.dumps(message)


def _pyqom() -> list[str]:
    return [sys.executable, "-m", "pyqom"]


def _run(program: list[str], args: tuple[str, ...], lines: tuple[str, ...],
         tmp: Path) -> tuple[int, str, str]:
    stream = "".join(f"{line}\n" for line in (_qmp("qmp_capabilities"), *lines,
                                               _qmp("quit")))
    argv = [arg.replace("@TMP@", str(tmp)) for arg in args]
    done = subprocess.run([*program, *argv, "-qmp", "stdio"],
                          input=stream.replace("@TMP@", str(tmp)).encode(),
                          capture_output=True, cwd=tmp, env=pyqom_env(), timeout=60)
    stderr = PROGRAM.sub(lambda m: ("STAMP " if m.group("stamp") else "") + "PROG: ",
                         done.stderr.decode().replace(str(tmp), "@TMP@"))
    return done.returncode, done.stdout.decode().replace(str(tmp), "@TMP@"), stderr


def both(tmp_path: Path, args: tuple[str, ...], *lines: str
         ) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    qemu = qemu_or_skip()
    dirs = [tmp_path / "qemu", tmp_path / "pyqom"]
    for path in dirs:
        path.mkdir()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        theirs = pool.submit(_run, [qemu], args, lines, dirs[0])
        mine = pool.submit(_run, _pyqom(), args, lines, dirs[1])
        return theirs.result(), mine.result()


def assert_same(tmp_path: Path, args: tuple[str, ...], *lines: str) -> list[str]:
    """Status, stderr and stdout's lines as QEMU's; returns pyqom's lines."""
    (status, out, err), (my_status, my_out, my_err) = both(tmp_path, args, *lines)
    assert (my_status, my_err) == (status, err)
    expected, actual = _lines(out), _lines(my_out)
    for number, (mine, theirs) in enumerate(zip(actual, expected, strict=False)):
        assert (number, _canonical(mine)) == (number, _canonical(theirs))
    assert len(actual) == len(expected), (actual, expected)
    return actual


# ---------------------------------------------------------------------------
# Whole sessions, byte for byte
# ---------------------------------------------------------------------------

NONE_MACHINE_LINES = (
    _qmp("query-target"), _qmp("query-status"), _qmp("query-cpus-fast"),
    _qmp("query-hotpluggable-cpus"), _qmp("query-memory-size-summary"),
    _qmp("query-memory-devices"), _qmp("query-block"),
    _qmp("query-named-block-nodes", {"flat": True}), _qmp("query-iothreads"),
    _qmp("query-balloon"), _qmp("balloon", {"value": 1 << 30}),
    _qmp("query-sev-capabilities"), _qmp("query-sgx-capabilities"), _qmp("query-uuid"),
    _qmp("query-acpi-ospm-status"), _qmp("query-chardev"),
    _qmp("query-command-line-options", {"option": "nosuch"}),
    _qmp("migrate-set-capabilities",
         {"capabilities": [{"capability": "events", "state": True}]}),
    _qmp("migrate-set-capabilities",
         {"capabilities": [{"capability": "nosuch", "state": True}]}),
    _qmp("migrate-set-capabilities", {"capabilities": [{"capability": "events"}]}),
    _qmp("migrate-set-capabilities", {"capabilities": [1]}),
    _qmp("migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": 1}]}),
    _qmp("migrate-set-capabilities",
         {"capabilities": [{"capability": "events", "state": False, "x": 1}]}),
)


def test_the_none_machine_answers_as_qemu(tmp_path: Path) -> None:
    """libvirt's probe machine: no CPU, RAM, drives, balloon, KVM; ``-nographic``
    with ``-nodefaults`` is no display."""
    assert_same(tmp_path, (*PROBE, "-accel", "tcg"), *NONE_MACHINE_LINES)


def test_a_pc_domain_answers_as_qemu(tmp_path: Path) -> None:
    """The options of libvirt's domain command line, and what it asks at start."""
    args = ("-machine", "pc-i440fx-7.2,usb=off,dump-guest-core=off", "-accel", "tcg",
            "-m", "size=131072k,slots=4,maxmem=2097152k", "-overcommit", "mem-lock=off",
            "-smp", "1,sockets=1,cores=1,threads=1",
            "-uuid", "2AC93E71-214d-4e90-b339-14139fbf0db1", "-display", "none",
            "-no-user-config", "-nodefaults", "-rtc", "base=utc", "-no-shutdown",
            "-boot", "strict=on", "-audiodev", '{"id":"audio1","driver":"none"}',
            "-msg", "timestamp=on", "-S")
    assert_same(tmp_path, args, _qmp("query-uuid"), _qmp("query-block"),
                _qmp("query-named-block-nodes", {"flat": True}), _qmp("query-iothreads"),
                _qmp("query-chardev"), _qmp("query-balloon"), _qmp("query-status"),
                _qmp("query-memory-size-summary"))


def test_a_monitor_on_a_chardev_answers_as_qemu(tmp_path: Path) -> None:
    """``-chardev socket`` + ``-mon``: both monitors in ``query-chardev``."""
    args = ("-machine", "pc", "-accel", "tcg", "-m", "128M", "-display", "none",
            "-nodefaults", "-S", "-chardev",
            "socket,id=charmonitor,path=@TMP@/m.sock,server=on,wait=off",
            "-mon", "chardev=charmonitor,id=monitor,mode=control",
            "-chardev", "file,id=unused,path=@TMP@/f.out", "-debugcon", "file:@TMP@/d.out")
    (_, out, _), (_, my_out, _) = both(tmp_path, args, _qmp("query-chardev"))

    def entries(text: str) -> list[str]:
        line = next(line for line in _lines(text) if '"label"' in line)
        return sorted(_array_entries(line, len('{"return": '))[0])
    assert entries(my_out) == entries(out)    # QEMU's order is its hash table's


@pytest.mark.parametrize("args", [
    ("-machine", "none,accel=nvmm:tcg"),            # not built in: falls back
    ("-machine", "none,accel=nvmm"),                # nothing left
    ("-machine", "none,accel=tcg", "-accel", "tcg"),
    ("-machine", "none,accel=bogus:tcg"),
    ("-accel", "nvmm", "-accel", "tcg", "-machine", "none"),
], ids=["fallback", "none-left", "both-forms", "unknown", "accel-options"])
def test_accelerators_as_a_qemu_without_them(tmp_path: Path, args: tuple[str, ...]) -> None:
    """pyqom is a QEMU whose only accelerator is TCG: QEMU 7.2's words for one
    it does not have (nvmm is not built into Debian's QEMU either)."""
    assert_same(tmp_path, ("-S", "-nodefaults", "-display", "none", *args))


@pytest.mark.parametrize("option", [
    ("-overcommit", "mem-lock=off,cpu-pm=off"), ("-overcommit", "mem-lock=maybe"),
    ("-overcommit", "mem-lock=on"), ("-overcommit", "cpu-pm=on"),
    ("-overcommit", "mem-lock=n,cpu-pm=yes"), ("-msg", "timestamp=y"),
    ("-overcommit", "bogus=on"), ("-uuid", "not-a-uuid"),
    ("-uuid", "2ac93e71-214d-4e90-b339-14139fbf0db"), ("-rtc", "base=utc,clock=host"),
    ("-rtc", "bogus=1"), ("-boot", "strict=on"), ("-boot", "strict=maybe"),
    ("-boot", "bogus=1"), ("-msg", "timestamp=off"), ("-msg", "timestamp=maybe"),
    ("-msg", "bogus=on"), ("-audiodev", "none,id=a1"), ("-mon", "chardev=nosuch"),
    ("-mon", "chardev=c,mode=bogus"), ("-mon", "bogus=1"),
    ("-pidfile", "@TMP@/no/such/dir.pid"), ("-name", "guest=g1,debug-threads=on"),
    ("-name", "guest=g1,bogus=1"), ("-name", "g1,debug-threads=maybe"),
], ids=lambda option: " ".join(option))
def test_host_options_as_qemu(tmp_path: Path, option: tuple[str, str]) -> None:
    assert_same(tmp_path, ("-machine", "pc", "-accel", "tcg", "-m", "128M", "-display",
                           "none", "-nodefaults", "-S", *option), _qmp("query-status"))


def test_msg_timestamps_as_qemu(tmp_path: Path) -> None:
    """``-msg timestamp=on``: each error and warning line starts with QEMU's UTC
    ISO 8601 time (microseconds, ``Z``) and a space."""
    (status, _, err), (my_status, _, my_err) = both(
        tmp_path, ("-msg", "timestamp=on", "-machine", "none,accel=nvmm:tcg", "-S",
                   "-nodefaults", "-display", "none"))
    assert (my_status, my_err) == (status, err)
    assert err.startswith("STAMP PROG: invalid accelerator nvmm\n")


# ---------------------------------------------------------------------------
# What pyqom lists, against what QEMU lists for the same things
# ---------------------------------------------------------------------------

def _query(program: list[str], *commands: tuple[str, dict[str, Any] | None],
           args: tuple[str, ...] = PROBE) -> list[str]:
    stream = "".join(f"{line}\n" for line in (
        _qmp("qmp_capabilities"), *(_qmp(name, arguments) for name, arguments in commands),
        _qmp("quit")))
    done = subprocess.run([*program, *args, "-accel", "tcg", "-qmp", "stdio"],
                          input=stream.encode(), capture_output=True, env=pyqom_env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return [line for line in _lines(done.stdout.decode()) if line.startswith('{"return"')]


def _entries(line: str) -> dict[str, str]:
    """A returned list's entries, raw, by their ``name``."""
    raw, _ = _array_entries(line, len('{"return": '))
    return {json.loads(entry)["name"]: entry for entry in raw}


def test_machines_and_cpu_models_are_qemus_entries() -> None:
    """Every machine pyqom lists is QEMU's entry for it, byte for byte, except
    that no CPU can be hot-plugged on pyqom (``hotpluggable-cpus`` false); every
    CPU model too, except that pyqom's ``qemu64`` is no alias of a versioned
    model (it has none)."""
    theirs = _query([qemu_or_skip()], ("query-machines", None), ("query-cpu-definitions", None))
    mine = _query(_pyqom(), ("query-machines", None), ("query-cpu-definitions", None))
    machines, qemu_machines = _entries(mine[1]), _entries(theirs[1])
    assert set(machines) == {"pc-i440fx-7.2", "pc-i440fx-5.1", "pc-i440fx-2.1",
                             "pc-i440fx-2.0", "none"}
    for name, entry in machines.items():
        expected = qemu_machines[name]
        if name != "none":
            expected = expected.replace('"hotpluggable-cpus": true', '"hotpluggable-cpus": false')
        assert entry == expected
    models, qemu_models = _entries(mine[2]), _entries(theirs[2])
    assert set(models) == {"qemu64", "max"}
    assert models["max"] == qemu_models["max"]
    assert models["qemu64"] == qemu_models["qemu64"].replace(', "alias-of": "qemu64-v1"', "")


def test_command_line_options_are_qemus() -> None:
    """Each option pyqom lists is one of QEMU's, with QEMU's parameters (those
    pyqom takes), types and order, in QEMU's order of options."""
    theirs = json.loads(_query([qemu_or_skip()], ("query-command-line-options", None))[1])
    mine = json.loads(_query(_pyqom(), ("query-command-line-options", None))[1])
    qemu_options = {entry["option"]: entry["parameters"] for entry in theirs["return"]}
    order = list(qemu_options)
    names = [entry["option"] for entry in mine["return"]]
    assert names == sorted(names, key=order.index)
    for entry in mine["return"]:
        mine_names = [parameter["name"] for parameter in entry["parameters"]]
        expected = [{"name": parameter["name"], "type": parameter["type"]}
                    for parameter in qemu_options[entry["option"]]
                    if parameter["name"] in mine_names]
        assert entry["parameters"] == expected, entry["option"]
    assert "sandbox" not in names      # pyqom applies no seccomp filter


def _unmask(schema: list[dict[str, Any]], name: str, depth: int = 0) -> Any:
    """A schema type, described without its masked name (for comparing)."""
    by_name = {entry["name"]: entry for entry in schema}
    entry = by_name[name]
    kind = entry["meta-type"]
    if kind == "builtin" or depth > 3:
        return name if kind == "builtin" else "..."
    if kind == "array":
        return [_unmask(schema, entry["element-type"], depth + 1)]
    if kind == "enum":
        return ("enum", tuple(entry["values"]))
    return {member["name"]: ("default" in member,
                             _unmask(schema, member["type"], depth + 1))
            for member in entry["members"]}


def test_the_schema_is_in_qemus_format() -> None:
    """``query-qmp-schema``: QEMU's entry shapes and key order, commands first,
    masked names numbered in order of first use, builtins as QEMU names them;
    each of pyqom's commands (its ``x-`` additions aside) is QEMU's, taking
    QEMU's arguments (names and optionality) and, where pyqom declares what it
    returns, returning QEMU's members; ``object-add`` names pyqom's types."""
    oracle = QemuOracle()    # a socket: QEMU's quit can cut its 300 KB stdio answer short
    try:
        qemu_schema = oracle.execute("query-qmp-schema")["return"]
    finally:
        oracle.close()
    line = _query(_pyqom(), ("query-qmp-schema", None))[1]
    schema = json.loads(line)["return"]
    # (QEMU's optional "features" and "allow-oob" keys: pyqom's commands have neither)
    qemu_shapes = {entry["meta-type"]: [key for key in entry
                                        if key not in ("features", "allow-oob")]
                   for entry in qemu_schema
                   if entry["meta-type"] != "object" or "tag" not in entry}
    kinds = [entry["meta-type"] for entry in schema]
    order = ("command", "event")
    assert kinds == sorted(kinds, key=lambda kind: order.index(kind) if kind in order else 2)
    masked = []
    for entry in schema:
        if entry["meta-type"] == "object" and "tag" in entry:
            assert list(entry) == ["name", "tag", "variants", "members", "meta-type"]
        elif "features" in entry:
            assert list(entry) == [*qemu_shapes[entry["meta-type"]], "features"]
        else:
            assert list(entry) == qemu_shapes[entry["meta-type"]], entry
        if entry["meta-type"] in ("object", "enum"):
            masked.append(entry["name"])
    assert masked == [str(number) for number in range(len(masked))]
    qemu_builtins = {entry["name"]: entry for entry in qemu_schema
                     if entry["meta-type"] == "builtin"}
    for entry in schema:
        if entry["meta-type"] == "builtin":
            assert entry == qemu_builtins[entry["name"]]
    qemu_events = {entry["name"]: entry for entry in qemu_schema
                   if entry["meta-type"] == "event"}
    for entry in schema:
        if entry["meta-type"] == "event":
            theirs = qemu_events[entry["name"]]
            assert entry.get("features") == theirs.get("features"), entry["name"]
            assert _unmask(schema, entry["arg-type"]) == _unmask(
                qemu_schema, theirs["arg-type"]), entry["name"]
    qemu_commands = {entry["name"]: entry for entry in qemu_schema
                     if entry["meta-type"] == "command"}
    for entry in schema:
        if entry["meta-type"] != "command" or entry["name"].startswith("x-"):
            continue
        theirs = qemu_commands[entry["name"]]
        arguments = _unmask(schema, entry["arg-type"])
        expected_arguments = _unmask(qemu_schema, theirs["arg-type"])
        if entry["name"] == "object-add":
            optional, (kind, types) = arguments["qom-type"]
            assert (optional, kind, arguments["id"]) == (False, "enum", (False, "str"))
            assert {"memory-backend-ram", "secret"} <= set(types)
            assert set(types) <= set(expected_arguments["qom-type"][1][1])
            continue
        if entry["name"] == "device_add":
            expected_arguments = {name: value for name, value in expected_arguments.items()
                                  if name in ("driver", "bus", "id")}
        assert {name: optional for name, (optional, _) in arguments.items()} == \
            {name: optional for name, (optional, _) in expected_arguments.items()}, entry["name"]
        if entry["ret-type"] != "any":
            assert _shape(_unmask(schema, entry["ret-type"])) == _shape(
                _unmask(qemu_schema, theirs["ret-type"]), like=_unmask(schema, entry["ret-type"])
            ), entry["name"]


def _shape(value: Any, like: Any = None) -> Any:
    """Member names and optionality, recursively; an enum's values left out (pyqom's
    are a subset, checked where it matters); with ``like``, only the members
    ``like`` has (QEMU's extra optional members are what pyqom never sends)."""
    if isinstance(value, list):
        return [_shape(value[0], like[0] if isinstance(like, list) else None)]
    if isinstance(value, dict):
        names = like if isinstance(like, dict) else value
        missing = [name for name in names if name not in value]
        assert not missing, f"members QEMU does not have: {missing}"
        return {name: (value[name][0], _shape(value[name][1],
                                              like[name][1] if isinstance(like, dict) else None))
                for name in names}
    if isinstance(value, tuple):
        return "enum"
    return value


# ---------------------------------------------------------------------------
# -pidfile, -daemonize, -no-shutdown
# ---------------------------------------------------------------------------

def _daemon(program: list[str], tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*program, "-S", "-no-user-config", "-nodefaults", "-nographic",
                           "-machine", "none,accel=tcg", "-qmp",
                           f"unix:{tmp}/qmp.sock,server=on,wait=off",
                           "-pidfile", f"{tmp}/run.pid", "-daemonize", *extra],
                          capture_output=True, text=True, env=pyqom_env(), timeout=60)


def _quit(sock: Path) -> None:
    async def go() -> None:
        client = await connect_qmp("test", sock)
        await client.execute("quit")
        with contextlib.suppress(EOFError, OSError):   # it may hang up first
            await client.disconnect()
    asyncio.run(go())


def _gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("holder", ["qemu", "pyqom"])
def test_daemonize_and_the_pidfile_lock(tmp_path: Path, holder: str) -> None:
    """libvirt's probe: the parent exits 0 once the daemon is up, the pid file
    (the daemon's pid) is written first; a second program with the same pid file
    fails with QEMU's words whichever of QEMU and pyqom holds it (both take the
    same ``fcntl`` lock); after ``quit`` the file is gone."""
    qemu = qemu_or_skip()
    programs = {"qemu": [qemu], "pyqom": _pyqom()}
    first = _daemon(programs[holder], tmp_path)
    assert (first.returncode, first.stdout, first.stderr) == (0, "", "")
    pid = int((tmp_path / "run.pid").read_text())
    assert (tmp_path / "run.pid").read_text() == f"{pid}\n"
    os.kill(pid, 0)                          # the daemon runs; the parent has gone
    try:
        (tmp_path / "other").mkdir()
        for program in programs.values():
            second = subprocess.run(
                [*program, "-S", "-nodefaults", "-display", "none", "-machine", "none",
                 "-pidfile", f"{tmp_path}/run.pid"], capture_output=True, text=True,
                env=pyqom_env(), timeout=60)
            assert second.returncode == 1
            assert PROGRAM.sub("PROG: ", second.stderr) == (
                "PROG: cannot create PID file: Cannot lock pid file: "
                "Resource temporarily unavailable\n")
    finally:
        _quit(tmp_path / "qmp.sock")
    assert _gone(pid)
    assert not (tmp_path / "run.pid").exists()


def test_a_daemon_that_fails_to_start_as_qemu(tmp_path: Path) -> None:
    """An error after the fork: the daemon says it on the original stderr and the
    parent exits 1 (its daemon never said it was ready)."""
    results = []
    for name, program in (("qemu", [qemu_or_skip()]), ("pyqom", _pyqom())):
        done = subprocess.run(
            [*program, "-machine", "none", "-S", "-nodefaults", "-display", "none",
             "-qmp", f"unix:{tmp_path}/{name}.sock,server=on,wait=off", "-daemonize",
             "-object", "memory-backend-ram,id=m1,size=0"],
            capture_output=True, text=True, env=pyqom_env(), timeout=60)
        results.append((done.returncode, PROGRAM.sub("PROG: ", done.stderr)))
    assert results[1] == results[0]
    assert results[0][0] == 1


def test_daemonize_refuses_stdio_as_qemu(tmp_path: Path) -> None:
    assert_same(tmp_path, ("-machine", "none", "-S", "-nodefaults", "-display", "none",
                           "-daemonize"))


async def _powered_off(name: str, sock: Path, process: subprocess.Popen[bytes]) -> list[Any]:
    """``cont``, wait for the guest's power-off (STOP), then what QMP and the
    process show; ``quit``."""
    client = await connect_qmp(name, sock)
    events: list[Any] = []

    async def listen() -> None:
        async for event in client.events:
            events.append((event["event"], event.get("data")))
    listener = asyncio.create_task(listen())
    await client.execute("cont")
    deadline = time.monotonic() + 30
    while ("STOP", None) not in events and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    status = await client.execute("query-status")
    alive = process.poll() is None
    await client.execute("quit")
    listener.cancel()
    with contextlib.suppress(EOFError, OSError):   # it may hang up first
        await client.disconnect()
    return [events, status, alive]


def test_no_shutdown_keeps_a_powered_off_guest_as_qemu(tmp_path: Path) -> None:
    """``-no-shutdown``: the guest's power-off is SHUTDOWN then STOP, the VM is in
    state ``shutdown`` and the program stays until ``quit``; as QEMU 7.2."""
    kernel = build_guest(tmp_path)
    runs = []
    for name, program in (("qemu", [qemu_or_skip()]), ("pyqom", _pyqom())):
        sock = tmp_path / f"{name}.sock"
        process = subprocess.Popen(
            [*program, "-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults",
             "-m", "128M", "-no-shutdown", "-S", "-kernel", kernel, "-append", "poweroff",
             *CONSOLE, "-debugcon", f"file:{tmp_path / name}.out",
             "-qmp", f"unix:{sock},server=on,wait=off"], env=pyqom_env())
        try:
            runs.append(asyncio.run(_powered_off(name, sock, process)))
            process.wait(timeout=30)
            runs[-1].append(process.returncode)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert runs[1] == runs[0]
    assert runs[0][1]["status"] == "shutdown" and runs[0][2]


@pytest.mark.parametrize("chardev", [
    "socket,id=c,fd=77,server=on,wait=off", "socket,id=c,fd=x7,server=on,wait=off",
    "socket,id=c,fd=0,server=on,wait=off",
])
def test_chardev_fd_refusals_as_qemu(tmp_path: Path, chardev: str) -> None:
    """An ``fd`` that is no descriptor, no number, or no socket (stdin is a pipe)."""
    assert_same(tmp_path, ("-machine", "none", "-S", "-nodefaults", "-display", "none",
                           "-chardev", chardev, "-mon", "chardev=c,mode=control"))


def test_a_monitor_on_an_inherited_socket_as_qemu(tmp_path: Path) -> None:
    """libvirt's monitor: a listening socket handed over as ``fd=N``; the client
    gets the greeting, and ``query-chardev`` names the socket's real path."""
    replies = []
    for name, program in (("qemu", [qemu_or_skip()]), ("pyqom", _pyqom())):
        path = tmp_path / f"{name}.sock"
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(path))
            listener.listen(1)
            process = subprocess.Popen(
                [*program, "-machine", "none", "-S", "-nodefaults", "-display", "none",
                 "-chardev", f"socket,id=charmonitor,fd={listener.fileno()},server=on,wait=off",
                 "-mon", "chardev=charmonitor,id=monitor,mode=control"],
                pass_fds=[listener.fileno()], env=pyqom_env())
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(str(path))
                stream = client.makefile("rwb")
                stream.readline()
                for line in (_qmp("qmp_capabilities"), _qmp("query-chardev")):
                    stream.write(line.encode() + b"\n")
                    stream.flush()
                    reply = stream.readline()
                replies.append(reply.replace(str(path).encode(), b"@SOCK@"))
                stream.write(_qmp("quit").encode() + b"\n")
                stream.flush()
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert replies[1] == replies[0]
    assert b'"filename": "unix:@SOCK@,server=on"' in replies[0]


def test_a_monitor_on_an_inherited_connected_socket_as_qemu(tmp_path: Path) -> None:
    """``fd=N`` without ``server=on``: one end of a socket pair is the monitor's
    connection; the other end talks QMP, as with QEMU."""
    replies = []
    for program in ([qemu_or_skip()], _pyqom()):
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with mine, theirs:
            process = subprocess.Popen(
                [*program, "-machine", "none", "-S", "-nodefaults", "-display", "none",
                 "-chardev", f"socket,id=charmonitor,fd={theirs.fileno()}",
                 "-mon", "chardev=charmonitor,mode=control"],
                pass_fds=[theirs.fileno()], env=pyqom_env())
            theirs.close()
            try:
                stream = mine.makefile("rwb")
                lines = [PACKAGE_FREE.sub(b'"package": ""', stream.readline())]
                for line in (_qmp("qmp_capabilities"), _qmp("query-chardev"), _qmp("quit")):
                    stream.write(line.encode() + b"\n")
                    stream.flush()
                    lines.append(TIMESTAMP_FREE.sub(b"", stream.readline()))
                replies.append(lines)
                process.wait(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    assert replies[1] == replies[0]


PACKAGE_FREE = re.compile(rb'"package": "[^"]*"')
TIMESTAMP_FREE = re.compile(rb'"timestamp": \{[^}]*\}, ')


def test_the_accelerator_and_machine_types_are_qemus() -> None:
    """``qom-list-types``: ``tcg-accel`` (what libvirt looks for before it offers
    domain type ``qemu``), its abstract parent and the ``none`` machine, as QEMU's."""
    commands = (("qom-list-types", {"abstract": True}),)
    theirs = _entries(_query([qemu_or_skip()], *commands)[1])
    mine = _entries(_query(_pyqom(), *commands)[1])
    for name in ("accel", "tcg-accel", "none-machine", "machine"):
        assert mine[name] == theirs[name]


def _locked_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmLck:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]


def test_mem_lock_locks_the_guest_ram_as_qemu(tmp_path: Path) -> None:
    """``-overcommit mem-lock=on``: after board init everything is locked, guest
    RAM included (at least its 128 MiB), in QEMU and in pyqom."""
    locked = []
    for name, program in (("qemu", [qemu_or_skip()]), ("pyqom", _pyqom())):
        sock = tmp_path / f"{name}.sock"
        process = subprocess.Popen(
            [*program, "-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults",
             "-m", "128M", "-S", "-overcommit", "mem-lock=on",
             "-qmp", f"unix:{sock},server=on,wait=off"], env=pyqom_env())
        try:
            _quit_after(sock, lambda pid=process.pid: locked.append(_locked_kib(pid)))
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert all(kib >= 128 * 1024 for kib in locked), locked


def _quit_after(sock: Path, check: Any) -> None:
    async def go() -> None:
        client = await connect_qmp("test", sock)
        await client.execute("query-status")      # start-up is over
        check()
        await client.execute("quit")
        with contextlib.suppress(EOFError, OSError):   # it may hang up first
            await client.disconnect()
    asyncio.run(go())


def test_the_none_machine_in_hmp_and_device_add_as_qemu(tmp_path: Path) -> None:
    """Nothing to show in ``info mtree`` and ``info numa``; a DIMM cannot be plugged.

    QEMU lists the none machine's two address spaces in an order that changes
    from run to run, so ``info mtree`` is compared as its set of sections."""
    args = ("-machine", "none", "-S", "-nodefaults", "-display", "none")
    (tmp_path / "mtree").mkdir()
    (_, out, _), (_, my_out, _) = both(
        tmp_path / "mtree", args, _qmp("human-monitor-command", {"command-line": "info mtree"}))

    def sections(stdout: str) -> list[str]:
        reply = next(line for line in _lines(stdout) if line.startswith('{"return": "'))
        return sorted(json.loads(reply)["return"].split("\r\n\r\n"))

    assert sections(my_out) == sections(out)
    assert_same(tmp_path, args,
                _qmp("human-monitor-command", {"command-line": "info numa"}),
                _qmp("object-add", {"qom-type": "memory-backend-ram", "id": "m1",
                                    "size": 1 << 20}),
                _qmp("device_add", {"driver": "pc-dimm", "id": "d1", "memdev": "m1"}),
                _qmp("query-memory-devices"), _qmp("query-memdev"))
