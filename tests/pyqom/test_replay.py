"""Record and replay (``-x-record``, ``pyqom -x-replay``, pyqom.replay: pyqom
additions): a recorded session replayed against a fresh pyqom; the first
difference reported.  tests/conformance/test_replay_vs_qemu.py replays
recordings against real QEMU 7.2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sockets import connect, wait_for

from pyqom.cli import main
from pyqom.replay import (
    Difference,
    assert_replays,
    lines_match,
    read_recording,
    replay,
    replay_options,
)

PYQOM = [sys.executable, "-m", "pyqom"]
BASE = ["-machine", "pc", "-accel", "tcg", "-m", "1G,slots=2,maxmem=4G", "-display", "none",
        "-nodefaults", "-S"]
SESSION = [
    {"execute": "qmp_capabilities"},
    {"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "m1",
                                            "size": 1 << 28}},
    {"execute": "device_add", "arguments": {"driver": "pc-dimm", "id": "d1", "memdev": "m1"}},
    {"execute": "query-memory-devices"},
    {"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "m1",
                                            "size": 1 << 28}, "id": 7},
    {"execute": "query-memdev"},
    {"execute": "quit"},
]


def record_stdio(path: Path, commands: list[dict], args: list[str] = BASE) -> bytes:
    """Run pyqom with ``-qmp stdio -x-record path`` on ``commands``; its stdout."""
    done = subprocess.run([*PYQOM, *args, "-qmp", "stdio", "-x-record", str(path)],
                          input="".join(json.dumps(c) + "\n" for c in commands).encode(),
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_recording_holds_every_line(tmp_path):
    path = tmp_path / "session.jsonl"
    stdout = record_stdio(path, SESSION)
    argv, steps = read_recording(path)
    assert argv == [*BASE, "-qmp", "stdio", "-x-record", str(path)]
    assert steps[0] == (2, {"monitor": 0, "connection": 0, "step": "connect"})
    assert steps[-1][1] == {"monitor": 0, "connection": 0, "step": "close"}
    sent = [step["line"] for _, step in steps if step["step"] == "in"]
    assert sent == [json.dumps(c) + "\n" for c in SESSION]
    received = "".join(step["line"] for _, step in steps if step["step"] == "out")
    assert received.encode("latin-1") == stdout       # byte for byte, events included
    assert '"event": "SHUTDOWN"' in received


def test_replay_against_pyqom_matches(tmp_path):
    path = tmp_path / "session.jsonl"
    record_stdio(path, SESSION)
    result = replay(path)
    assert result.ok, result.difference
    assert result.matched == 9    # greeting, 7 answers, SHUTDOWN
    assert assert_replays(path).matched == 9


def test_first_difference_is_reported(tmp_path):
    path = tmp_path / "session.jsonl"
    record_stdio(path, SESSION)
    lines = path.read_text().splitlines()
    # the user's bug report says the DIMM was at 8 GiB
    at = next(i for i, line in enumerate(lines) if "4294967296" in line)
    lines[at] = lines[at].replace("4294967296", "8589934592")
    path.write_text("\n".join(lines) + "\n")
    result = replay(path)
    assert result.difference is not None
    difference = result.difference
    assert (difference.record, difference.monitor, difference.connection) == (at + 1, 0, 0)
    assert difference.sent == '{"execute": "query-memory-devices"}\n'
    assert "8589934592" in difference.expected and "4294967296" in difference.got
    assert result.matched == 4
    with pytest.raises(AssertionError, match=r"session\.jsonl:\d+: first difference"):
        assert_replays(path)
    out, err = io.StringIO(), io.StringIO()
    assert main(["-x-replay", str(path)], stdout=out, stderr=err) == 1
    assert out.getvalue() == difference.describe(str(path))
    assert out.getvalue().splitlines()[1] == '  after sending: {"execute": "query-memory-devices"}'


def test_replay_command_line(tmp_path):
    path = tmp_path / "session.jsonl"
    record_stdio(path, SESSION)
    done = subprocess.run([*PYQOM, "-x-replay", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout) == (0, f"{path}: replayed, 9 lines matched\n")
    bad = subprocess.run([*PYQOM, "-x-replay"], capture_output=True, text=True, timeout=60)
    assert (bad.returncode, bad.stderr) == (1, "pyqom: -x-replay FILE [-- PROGRAM ARGS...]\n")
    missing = main(["-x-replay", str(tmp_path / "none")], stdout=io.StringIO(),
                   stderr=(err := io.StringIO()))
    assert missing == 1 and err.getvalue().startswith(f"pyqom: -x-replay {tmp_path}/none: ")


def test_two_monitors_and_their_events(tmp_path):
    """Events reach both monitors; the recording keeps which line came where."""
    path = tmp_path / "two.jsonl"
    a, b = tmp_path / "a.sock", tmp_path / "b.sock"
    args = [a_arg := f"unix:{a},server=on,wait=off", f"unix:{b},server=on,wait=off"]
    process = subprocess.Popen(
        [*PYQOM, *BASE[:-1], "-qmp", a_arg, "-qmp", args[1], "-x-record", str(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(process, a, b)
        first, second = connect(str(a)), connect(str(b))
        files = [sock.makefile("rwb") for sock in (first, second)]

        def say(file, command):
            file.write(json.dumps(command).encode() + b"\n")
            file.flush()

        for file in files:
            file.readline()                                # greeting
            say(file, {"execute": "qmp_capabilities"})
            assert file.readline() == b'{"return": {}}\r\n'
        say(files[0], {"execute": "stop"})
        assert b'"STOP"' in files[0].readline() and b'"STOP"' in files[1].readline()
        assert files[0].readline() == b'{"return": {}}\r\n'
        say(files[1], {"execute": "cont"})
        assert b'"RESUME"' in files[1].readline() and b'"RESUME"' in files[0].readline()
        assert files[1].readline() == b'{"return": {}}\r\n'
        say(files[0], {"execute": "quit"})
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for sock in (first, second):
            sock.close()
    _, steps = read_recording(path)
    outs = [(step["connection"], json.loads(step["line"]).get("event"))
            for _, step in steps if step["step"] == "out"]
    assert (1, "STOP") in outs and (0, "RESUME") in outs
    assert_replays(path)


def test_replay_options():
    argv = ["-m", "1G", "-qmp", "stdio", "-x-record", "f", "-x-prealloc-progress",
            "--monitor", "stdio", "-x-memory-map", "m.svg", "-S"]
    assert replay_options(argv, ["/t/q0.sock"], pyqom=True) == [
        "-m", "1G", "-x-prealloc-progress", "-x-memory-map", "m.svg", "-S",
        "-qmp", "unix:/t/q0.sock,server=on,wait=off"]
    assert replay_options(argv, ["/t/q0.sock"], pyqom=False) == [
        "-m", "1G", "-S", "-qmp", "unix:/t/q0.sock,server=on,wait=off"]


def test_what_is_blanked():
    event = '{"timestamp": {"seconds": %d, "microseconds": %d}, "event": "STOP"}\r\n'
    assert lines_match(event % (1, 2), event % (3, 4), None)
    greeting = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "%s"}}}\r\n'
    assert lines_match(greeting % "pyqom 0.1.0", greeting % "Debian 1:7.2+dfsg-7", None)
    version = '{"return": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "%s"}}\r\n'
    assert lines_match(version % "pyqom 0.1.0", version % "Debian 1:7.2+dfsg-7", None)
    other = '{"return": {"package": "%s"}}\r\n'            # any other package is compared
    assert not lines_match(other % "a", other % "b", None)
    assert not lines_match('{"return": {}}\r\n', '{"return": {}}\n', None)
    memdev = '{"return": [{"id": "a"}, {"id": "b"}]}\r\n'
    swapped = '{"return": [{"id": "b"}, {"id": "a"}]}\r\n'
    assert lines_match(memdev, swapped, '{"execute": "query-memdev"}\n')
    assert not lines_match(memdev, swapped, '{"execute": "query-memory-devices"}\n')


def test_difference_text():
    text = Difference(5, 0, 1, '{"execute": "x"}\n', '{"return": 1}\r\n',
                      "<no answer>").describe("r.jsonl")
    assert text == ('r.jsonl:5: first difference (monitor 0, connection 1)\n'
                    '  after sending: {"execute": "x"}\n'
                    '  expected: {"return": 1}\n  got:      <no answer>\n')


def test_record_file_unwritable(tmp_path):
    err = io.StringIO()
    status = main([*BASE, "-qmp", "stdio", "-x-record", str(tmp_path / "no" / "r")],
                  stdout=io.StringIO(), stderr=err)
    assert status == 1
    assert err.getvalue() == (f"pyqom: -x-record {tmp_path}/no/r: Could not open "
                              f"'{tmp_path}/no/r': No such file or directory\n")


def test_a_program_that_does_not_start(tmp_path):
    path = tmp_path / "session.jsonl"
    record_stdio(path, SESSION)
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace('"1G,slots=2,maxmem=4G"', '"1GB"')
    path.write_text("\n".join(lines) + "\n")
    result = replay(path)
    assert result.difference is not None and result.difference.record == 2
    assert result.difference.got.startswith("<cannot connect: ")
    assert "pyqom: -m 1GB: Parameter 'size' expects" in result.stderr
