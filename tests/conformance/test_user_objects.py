"""``thread-context``, the rng backends and the secrets against real QEMU 7.2.

Three tables, every answer compared with QEMU's:

* :data:`STEPS` - QMP and HMP (``human-monitor-command``) steps on one
  running machine per program: ``object-add`` / ``object-del`` valid and
  invalid, ``qom-get`` / ``qom-set``, ``qom-list``, ``qom-list-types``,
  ``qom-list-properties``, ``info qom-tree``, ``query-memdev``.  Files the
  steps name live in one scratch directory both programs read (``@DIR@``).
* :data:`SCENARIOS` - whole processes (``-object`` on the command line, then
  QMP on stdio), compared as raw bytes by ``test_processes.run_both``.
* :data:`HELP` - ``-object TYPE,help``.

The hosts's CPUs and NUMA nodes decide some answers (``cpu-affinity=[1]``
fails on a one-CPU host, ``node-affinity=[1]`` succeeds on a two-node one);
both programs run on the same host, so the answers must agree either way.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyqom_side import PyqomQmp, normalise
from qemu_oracle import QemuOracle, qemu_or_skip
from test_processes import Scenario, _canonical, _lines, hmp, qmp, run_both

from plugins.monitor import VmControl
from pyqom.vm import VM

RAM = "memory-backend-ram"
#: AES-256-CBC test vectors, made with ``openssl enc -aes-256-cbc`` (PKCS#7 padding):
KEY = "0123456789abcdef0123456789abcdef"                 # 32 bytes, raw
IV = "MDEyMzQ1Njc4OWFiY2RlZg=="                          # base64 of "0123456789abcdef"
#: the 32-byte "abcdefghijklmnopqrstuvwxyz012345" encrypted with KEY and IV
SECOND_KEY = "734H5rOppjjhWnfkswouTJEnsIqf598JXNQWRT1qkAQRUem6Sh/Pr+gVkXMIXeNS"
#: "chained" encrypted with the second key and IV
CHAINED = "JwyFKVHXjMXLOvVFbnzMsw=="
#: "hello secret" encrypted with KEY and IV
HELLO = "4BKQy3VhJwMcPySKRiqw9g=="
#: files of the scratch directory, by name
FILES = {
    "plain.txt": b"abc",
    "base64.txt": b"YWJj\n",
    "nul.txt": b"a\0b",
    "second-key.b64": SECOND_KEY.encode(),
    "hello.bin": base64.b64decode(HELLO),  # the raw ciphertext
}


def _add(qom_type: str, object_id: str, **props: Any) -> tuple[str, dict[str, Any]]:
    return ("object-add", {"qom-type": qom_type, "id": object_id, **props})


def _get(path: str, prop: str) -> tuple[str, dict[str, Any]]:
    return ("qom-get", {"path": path, "property": prop})


def _set(path: str, prop: str, value: Any) -> tuple[str, dict[str, Any]]:
    return ("qom-set", {"path": path, "property": prop, "value": value})


def _hmp(line: str) -> tuple[str, dict[str, Any]]:
    return ("human-monitor-command", {"command-line": line})


def _del(object_id: str) -> tuple[str, dict[str, Any]]:
    return ("object-del", {"id": object_id})


STEPS: list[tuple[str, dict[str, Any]]] = [
    # -- the types and their properties
    ("qom-list-types", {"implements": "rng-backend", "abstract": True}),
    ("qom-list-types", {"implements": "rng-backend"}),
    ("qom-list-types", {"implements": "secret_common", "abstract": True}),
    ("qom-list-types", {"implements": "thread-context", "abstract": True}),
    *[("qom-list-properties", {"typename": name}) for name in (
        "thread-context", "rng-backend", "rng-random", "rng-builtin", "rng-egd",
        "secret_common", "secret", "secret_keyring")],
    # -- thread-context
    _add("thread-context", "tc1"),
    ("qom-list", {"path": "/objects/tc1"}),
    _get("/objects/tc1", "cpu-affinity"),
    _get("/objects/tc1", "node-affinity"),
    _set("/objects/tc1", "cpu-affinity", [0]),
    _get("/objects/tc1", "cpu-affinity"),
    _set("/objects/tc1", "cpu-affinity", []),
    _set("/objects/tc1", "cpu-affinity", [65535]),
    _set("/objects/tc1", "cpu-affinity", [70000]),
    _set("/objects/tc1", "cpu-affinity", "0"),
    _set("/objects/tc1", "node-affinity", [0]),
    _get("/objects/tc1", "cpu-affinity"),
    _set("/objects/tc1", "node-affinity", [1]),
    _set("/objects/tc1", "node-affinity", [200]),
    _set("/objects/tc1", "node-affinity", []),
    _set("/objects/tc1", "thread-id", 3),
    _add("thread-context", "tc2", **{"cpu-affinity": [1], "node-affinity": [0]}),
    _add("thread-context", "tc2", **{"node-affinity": [0], "cpu-affinity": [1]}),
    _add("thread-context", "tc2", **{"cpu-affinity": [65535]}),
    _add("thread-context", "tc2", **{"cpu-affinity": []}),
    _add("thread-context", "tc2", **{"node-affinity": []}),
    _add("thread-context", "tc2", **{"node-affinity": [300]}),
    _add("thread-context", "tc2", **{"cpu-affinity": "1"}),
    _add("thread-context", "tc2", **{"cpu-affinity": [-1]}),
    _add("thread-context", "tc2", **{"thread-id": 1}),
    _add("thread-context", "tc2", **{"cpu-affinity": [1, 0, 1]}),
    _get("/objects/tc2", "cpu-affinity"),
    _add("thread-context", "tc3", **{"node-affinity": [0]}),
    _get("/objects/tc3", "cpu-affinity"),
    _add("thread-context", "1tc"),
    _add("thread-context", "tc1"),
    # -- prealloc-context on a backend, host-nodes and policy in query-memdev
    _add(RAM, "m1", size=64 << 20, prealloc=True, **{"prealloc-context": "tc1"}),
    _get("/objects/m1", "prealloc-context"),
    _add(RAM, "m2", size=1 << 20, **{"prealloc-context": "nosuch"}),
    _add(RAM, "m2", size=1 << 20, **{"prealloc-context": "m1"}),
    _add(RAM, "m2", size=1 << 20, **{"prealloc-context": "/objects/tc2"}),
    _set("/objects/m2", "prealloc-context", "tc3"),
    _set("/objects/m2", "prealloc", True),
    _get("/objects/m2", "prealloc-context"),
    _add(RAM, "m3", size=2 << 20, policy="bind", **{"host-nodes": [0]}),
    _add(RAM, "m4", size=2 << 20, policy="preferred", **{"host-nodes": [0]}),
    _add(RAM, "m5", size=2 << 20, policy="interleave", **{"host-nodes": [0]}),
    _add(RAM, "m6", size=2 << 20, policy="bind", **{"host-nodes": [0, 0]}),
    _add(RAM, "m7", size=2 << 20, policy="bind", **{"host-nodes": [1]}),
    _add(RAM, "m7", size=2 << 20, policy="interleave", **{"host-nodes": [0, 1]}),
    _add(RAM, "m7", size=2 << 20, policy="bind", **{"host-nodes": [127]}),
    _add(RAM, "m7", size=2 << 20, policy="bind", **{"host-nodes": [128]}),
    _add(RAM, "m7", size=2 << 20, policy="bind"),
    _add(RAM, "m7", size=2 << 20, **{"host-nodes": [0]}),
    _add(RAM, "m7", size=2 << 20, policy="nosuch"),
    _add(RAM, "m8", size=2 << 20, policy="default"),
    _set("/objects/m8", "policy", "bind"),
    _set("/objects/m8", "host-nodes", [0]),
    _get("/objects/m8", "host-nodes"),
    _get("/objects/m3", "host-nodes"),
    _get("/objects/m4", "policy"),
    ("query-memdev", {}),
    _hmp("info memdev"),
    _del("tc1"),
    _get("/objects/m1", "prealloc-context"),
    _del("tc2"),
    _get("/objects/tc2", "cpu-affinity"),
    _hmp("object_add thread-context,id=tc4,cpu-affinity.0=0,cpu-affinity.1=1"),
    _get("/objects/tc4", "cpu-affinity"),
    _hmp("object_add thread-context,id=tc5,cpu-affinity=0-1"),
    _hmp("object_add thread-context,id=tc5,cpu-affinity.0=65535"),
    _hmp("object_add thread-context,id=tc5,node-affinity.0=0,cpu-affinity.0=0"),
    _hmp("object_add thread-context,id=tc5,thread-id=1"),
    _hmp("object_del tc4"),
    _hmp("object_add thread-context,help"),
    _hmp("object_add secret,help"),
    _hmp("object_add rng-builtin,help"),
    # -- rng backends
    _add("rng-random", "r1"),
    _get("/objects/r1", "filename"),
    _get("/objects/r1", "opened"),
    _set("/objects/r1", "filename", "/dev/random"),
    _set("/objects/r1", "opened", False),
    _add("rng-random", "r2", filename="/nonexistent"),
    _add("rng-random", "r2", filename=""),
    _add("rng-random", "r2", filename="@DIR@/plain.txt"),
    _get("/objects/r2", "filename"),
    ("qom-list", {"path": "/objects/r2"}),
    _add("rng-random", "r3", filename="@DIR@"),
    _add("rng-random", "r4", opened=True),
    _add("rng-random", "r4", opened=False),
    _add("rng-random", "r4", opened="x"),
    _add("rng-random", "r4", filename=1),
    _add("rng-random", "r4", filename="/dev/urandom", foo=1),
    _add("rng-builtin", "rb"),
    _get("/objects/rb", "opened"),
    ("qom-list", {"path": "/objects/rb"}),
    _add("rng-builtin", "rb2", filename="/dev/urandom"),
    _add("rng-egd", "re"),
    _add("rng-egd", "re", chardev="nosuch"),
    _add("rng-backend", "rx"),
    _hmp("object_add rng-random,id=r5,filename=/nonexistent"),
    _hmp("object_add rng-random,id=r5,opened=on"),
    _hmp("object_add rng-random,id=r5,opened=maybe"),
    _hmp("object_add rng-random,id=r5"),
    _hmp("object_add rng-builtin,id=r6"),
    _del("r1"),
    _del("r1"),
    _hmp("object_del r5"),
    # -- secrets
    _add("secret", "s0"),
    _add("secret", "s1", data="abc"),
    *[_get("/objects/s1", prop) for prop in ("data", "loaded", "format", "keyid", "iv",
                                              "file")],
    _set("/objects/s1", "data", "zz"),
    _get("/objects/s1", "data"),
    _set("/objects/s1", "loaded", True),
    _set("/objects/s1", "format", "hex"),
    _set("/objects/s1", "format", "base64"),
    _get("/objects/s1", "format"),
    _add("secret", "s2", data="abc", file="@DIR@/plain.txt"),
    _add("secret", "s2", file="/nonexistent"),
    _add("secret", "s2", file="@DIR@"),
    _add("secret", "s2", file=""),
    _add("secret", "s2", file="@DIR@/plain.txt"),
    _get("/objects/s2", "file"),
    ("qom-list", {"path": "/objects/s2"}),
    _add("secret", "s3", file="@DIR@/base64.txt", format="base64"),
    _add("secret", "s4", data="a!b", format="base64"),
    _add("secret", "s4", file="@DIR@/nul.txt", format="base64"),
    _add("secret", "s4", file="@DIR@/nul.txt"),
    _add("secret", "s5", data="abc", format="hex"),
    _add("secret", "s5", data="abc", loaded=True),
    _add("secret", "s5", data="abc", loaded=False),
    _add("secret", "s5", data=3),
    _add("secret", "s6", data="abc", keyid="nosuch"),
    _add("secret", "s6", data="abc", keyid="rb"),
    _add("secret", "s6", data="abc", keyid="s1"),
    _add("secret", "s6", data="abc", keyid=""),
    _add("secret", "key", data=KEY),
    _add("secret", "s6", data="abc", keyid="key"),
    _add("secret", "s6", data="abc", keyid="key", iv="a!"),
    _add("secret", "s6", data="abc", keyid="key", iv="YWJj"),
    _add("secret", "s6", data="abc", keyid="key", iv=IV),
    _add("secret", "s6", data="0123456789abcdef", keyid="key", iv=IV),
    _add("secret", "s6", data="a!", keyid="key", iv=IV, format="base64"),
    _add("secret", "s6", data="YWJj", keyid="key", iv=IV, format="base64"),
    _add("secret", "hello", data=HELLO, keyid="key", iv=IV, format="base64"),
    _add("secret", "hello2", file="@DIR@/hello.bin", keyid="key", iv=IV),
    # a decrypted 32-byte key decrypts the next secret: the plaintext was right
    _add("secret", "key2", file="@DIR@/second-key.b64", keyid="key", iv=IV, format="base64"),
    _add("secret", "chained", data=CHAINED, keyid="key2", iv=IV, format="base64"),
    _add("secret", "wrong", data=CHAINED, keyid="key", iv=IV, format="base64"),
    # GLib's lenient base64: '=' inside, a partial group at the end
    _add("secret", "b1", data="YW=Jj==YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=\n",
         format="base64"),
    _add("secret", "s7", data="x", keyid="b1"),
    _add("secret", "b2", data="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", format="base64"),
    _add("secret", "s7", data=HELLO, keyid="b2", iv=IV, format="base64"),
    _add("secret", "b3", data="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY", format="base64"),
    _add("secret", "s8", data="x", keyid="b3"),
    _add("secret", "b4", data="MDEy\nMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
         format="base64"),
    _add("secret", "s8", data=HELLO, keyid="b4", iv=IV, format="base64"),
    _add("secret", "s9", data="x", iv="zz"),
    _add("secret", "s10", data=""),
    _get("/objects/s10", "loaded"),
    _add("secret", "s11", data="", format="base64"),
    _add("secret", "s12", data="YW", format="base64"),
    _add("secret_keyring", "k1"),
    _add("secret_keyring", "k1", serial=0),
    _add("secret_keyring", "k1", serial=123),
    _add("secret_keyring", "k1", serial=4294967295),
    _add("secret_keyring", "k1", serial="x"),
    _add("secret_keyring", "k1", serial=-5),
    ("qom-list", {"path": "/objects/k1"}),
    _get("/objects/k1", "serial"),
    _get("/objects/k1", "loaded"),
    _hmp("object_add secret_keyring,id=k2,serial=0x10"),
    _hmp("object_add secret,id=s13,data=abc,format=base64,loaded=on"),
    _hmp("object_add secret,id=s13"),
    _hmp("object_add secret,id=s13,data=abc,format=nope"),
    _hmp("object_add secret,id=s13,data=YWJj,format=base64"),
    _del("s1"),
    _del("key"),
    _add("secret", "s14", data="abc", keyid="key"),
    _hmp("info qom-tree /objects"),
]

#: Replies compared as sets: QEMU's list order follows GLib hashing.
UNORDERED = {"qom-list-types", "qom-list-properties", "qom-list", "query-memdev"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the steps name, in one directory both programs read."""
    directory = tmp_path_factory.mktemp("user-objects")
    for name, content in FILES.items():
        (directory / name).write_bytes(content)
    return directory


@pytest.fixture(scope="module")
def pyqom_qmp() -> Iterator[PyqomQmp]:
    """pyqom with QEMU's machine (``-m 1G,slots=3,maxmem=4G``), over its QMP session."""
    with VM("1G", slots=3, maxmem="4G", autoload=False) as vm:
        control = VmControl(vm)
        session = PyqomQmp(control)
        yield session
        session.close()
        control.close()


def _in(directory: Path, value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("@DIR@", str(directory))
    if isinstance(value, dict):
        return {key: _in(directory, item) for key, item in value.items()}
    return value


def _blank_memdev(reply: dict[str, Any]) -> dict[str, Any]:
    """``info memdev`` blocks come in GLib hash order: compared sorted."""
    text = reply.get("return")
    if isinstance(text, str) and text.startswith("memory backend: "):
        return {"return": sorted(block.rstrip("\r\n") for block in text.split("memory backend: ")),
                "ends": text[-4:]}
    return reply


@pytest.mark.parametrize(("command", "args"), STEPS,
                         ids=[f"{i:03}-{c}" for i, (c, _) in enumerate(STEPS)])
def test_same_answer_as_qemu(qemu: QemuOracle, pyqom_qmp: PyqomQmp, scratch: Path,
                             command: str, args: dict[str, Any]) -> None:
    args = _in(scratch, args)
    expected = _blank_memdev(qemu.execute(command, args))
    actual = _blank_memdev(pyqom_qmp.execute(command, args))
    assert normalise(command, actual, UNORDERED) == normalise(command, expected, UNORDERED)


# ---------------------------------------------------------------------------
# Whole processes: -object on the command line
# ---------------------------------------------------------------------------

BASE = ("-m", "1G,slots=3,maxmem=4G")


def _scenario(name: str, *objects: str, lines: tuple[str, ...] = ()) -> Scenario:
    args: list[str] = list(BASE)
    for text in objects:
        args += ["-object", text]
    return Scenario(name, tuple(args), lines)


def _tc_get(object_id: str, prop: str = "cpu-affinity") -> str:
    return qmp("qom-get", {"path": f"/objects/{object_id}", "property": prop})


SCENARIOS = [
    _scenario("tc-cpu-range", "thread-context,id=t,cpu-affinity=0-1",
              lines=(_tc_get("t"),)),
    _scenario("tc-cpu-one", "thread-context,id=t,cpu-affinity=0", lines=(_tc_get("t"),)),
    _scenario("tc-cpu-repeated", "thread-context,id=t,cpu-affinity=1,cpu-affinity=0",
              lines=(_tc_get("t"),)),
    _scenario("tc-node", "thread-context,id=t,node-affinity=0", lines=(_tc_get("t"),)),
    _scenario("tc-no-affinity", "thread-context,id=t",
              lines=(_tc_get("t"), _tc_get("t", "node-affinity"))),
    _scenario("tc-keyval-list", "thread-context,id=t,cpu-affinity.0=1"),
    _scenario("tc-cpu-not-on-host", "thread-context,id=t,cpu-affinity=65535"),
    _scenario("tc-cpu-too-big", "thread-context,id=t,cpu-affinity=65536"),
    _scenario("tc-cpu-bad-range", "thread-context,id=t,cpu-affinity=1-0"),
    _scenario("tc-cpu-word", "thread-context,id=t,cpu-affinity=all"),
    _scenario("tc-cpu-widest-range", "thread-context,id=t,cpu-affinity=0-65535",
              lines=(_tc_get("t"),)),
    _scenario("tc-cpu-range-too-long", "thread-context,id=t,cpu-affinity=0-70000"),
    _scenario("tc-cpu-range-open", "thread-context,id=t,cpu-affinity=0-"),
    _scenario("tc-cpu-octal-8", "thread-context,id=t,cpu-affinity=08"),
    _scenario("host-nodes-word", f"{RAM},id=m1,size=1M,host-nodes=all,policy=bind"),
    _scenario("tc-mixing", "thread-context,id=t,node-affinity=0,cpu-affinity=1"),
    _scenario("tc-no-cpus", "thread-context,id=t,node-affinity=300"),
    _scenario("tc-thread-id", "thread-context,id=t,thread-id=5"),
    _scenario("tc-prealloc-context",
              "thread-context,id=t,cpu-affinity=0",
              f"{RAM},id=m1,size=128M,prealloc=on,prealloc-threads=2,prealloc-context=t",
              lines=(qmp("qom-get", {"path": "/objects/m1", "property": "prealloc-context"}),
                     qmp("query-memdev"))),
    _scenario("tc-prealloc-context-missing",
              f"{RAM},id=m1,size=1M,prealloc-context=t"),
    _scenario("tc-prealloc-context-wrong-type", "rng-builtin,id=t",
              f"{RAM},id=m1,size=1M,prealloc-context=t"),
    _scenario("rng-random-default", "rng-random,id=r",
              lines=(qmp("qom-get", {"path": "/objects/r", "property": "filename"}),
                     hmp("info qom-tree /objects"))),
    _scenario("rng-random-missing-file", "rng-random,id=r,filename=/nonexistent"),
    _scenario("rng-random-opened", "rng-random,id=r,opened=on"),
    _scenario("rng-random-opened-bad", "rng-random,id=r,opened=perhaps"),
    _scenario("rng-builtin-option", "rng-builtin,id=r,filename=/dev/urandom"),
    _scenario("rng-egd-no-chardev", "rng-egd,id=r"),
    _scenario("secret-none", "secret,id=s"),
    _scenario("secret-both", "secret,id=s,data=x,file=/etc/hostname"),
    _scenario("secret-missing-file", "secret,id=s,file=/nonexistent"),
    _scenario("secret-bad-base64", "secret,id=s,data=a!,format=base64"),
    _scenario("secret-bad-format", "secret,id=s,data=a,format=hex"),
    _scenario("secret-loaded", "secret,id=s,data=x,loaded=on"),
    _scenario("secret-decrypt", f"secret,id=k,data={KEY}",
              f"secret,id=s,data={HELLO},keyid=k,iv={IV},format=base64",
              lines=(hmp("info qom-tree /objects"),)),
    _scenario("secret-decrypt-no-iv", f"secret,id=k,data={KEY}",
              "secret,id=s,data=abc,keyid=k"),
    _scenario("secret-key-later", f"secret,id=s,data={HELLO},keyid=k,iv={IV},format=base64",
              f"secret,id=k,data={KEY}"),
    _scenario("secret-keyring-zero", "secret_keyring,id=s,serial=0"),
    _scenario("secret-keyring-missing", "secret_keyring,id=s"),
    _scenario("secret-keyring-no-key", "secret_keyring,id=s,serial=123"),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_same_process_as_qemu(scenario: Scenario, tmp_path: Path) -> None:
    """Exit status, stderr and stdout's bytes are QEMU 7.2's."""
    expected, actual = run_both(scenario, tmp_path)
    assert (actual.status, actual.stderr) == (expected.status, expected.stderr)
    actual_lines = _lines(actual.stdout)
    expected_lines = _lines(expected.stdout)
    for number, (mine, theirs) in enumerate(zip(actual_lines, expected_lines, strict=False)):
        assert (number, _canonical(mine)) == (number, _canonical(theirs))
    assert len(actual_lines) == len(expected_lines), (actual_lines, expected_lines)


#: QEMU creates ``-object`` memory backends and rng-egd after the other objects
#: (``object_create_early`` in vl.c: rng-egd after the chardevs and the machine
#: object), and thread contexts before all; so does pyqom's ``command_line.start``.
LATE_OBJECTS = [
    _scenario("late-backend-before-its-context",
              f"{RAM},id=m1,size=1M,prealloc-context=tc", "thread-context,id=tc",
              lines=(qmp("qom-get", {"path": "/objects/m1", "property": "prealloc-context"}),)),
    Scenario("late-rng-egd-and-chardev",
             (*BASE, "-object", "rng-egd,id=e,chardev=c1", "-chardev", "null,id=c1"),
             (qmp("qom-get", {"path": "/objects/e", "property": "chardev"}),)),
]


@pytest.mark.parametrize("scenario", LATE_OBJECTS, ids=[s.name for s in LATE_OBJECTS])
def test_late_objects_as_qemu(scenario: Scenario, tmp_path: Path) -> None:
    expected, actual = run_both(scenario, tmp_path)
    assert (actual.status, actual.stderr) == (expected.status, expected.stderr)


HELP = ["thread-context", "rng-random", "rng-builtin", "rng-egd", "secret", "secret_keyring",
        "rng-backend", "secret_common"]


@pytest.mark.parametrize("type_name", HELP)
def test_object_help_is_qemus(type_name: str) -> None:
    qemu = subprocess.run([qemu_or_skip(), "-object", f"{type_name},help"],
                          capture_output=True, text=True, timeout=30)
    mine = subprocess.run([sys.executable, "-m", "pyqom", "-object", f"{type_name},help"],
                          capture_output=True, text=True, timeout=30,
                          env={"PYQOM_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert (mine.returncode, mine.stdout, mine.stderr.replace("pyqom", "qemu-system-x86_64")) \
        == (qemu.returncode, qemu.stdout, qemu.stderr)


# ---------------------------------------------------------------------------
# The threads themselves, as the kernel shows them in both processes
# ---------------------------------------------------------------------------

HOST_CPUS = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(HOST_CPUS) < 2,
                                    reason="one CPU: an affinity cannot differ from the default")


def _allowed_cpus(pid: int, tid: int) -> str:
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    return next(line.split(":", 1)[1].strip() for line in status.splitlines()
                if line.startswith("Cpus_allowed_list:"))


class _PyqomInProcess:
    """pyqom's QMP session in this process (its threads are this process's)."""

    def __init__(self) -> None:
        self.vm = VM("1G", slots=3, maxmem="4G", autoload=False)
        self.control = VmControl(self.vm)
        self.session = PyqomQmp(self.control)
        self.pid = os.getpid()

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        return self.session.execute(command, arguments or {})

    def close(self) -> None:
        self.session.close()
        self.control.close()
        self.vm.close()


@pytest.fixture(params=["qemu", "pyqom"])
def program(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Each program in turn; QEMU names its threads (``-name debug-threads=on``)."""
    if request.param == "qemu":
        oracle: Any = QemuOracle("-m", "1G,slots=3,maxmem=4G", "-name", "debug-threads=on")
    else:
        oracle = _PyqomInProcess()
    yield oracle
    oracle.close()


@needs_two_cpus
def test_thread_id_is_a_thread_with_that_affinity(program: Any) -> None:
    """In both programs ``thread-id`` names a thread whose kernel affinity is
    ``cpu-affinity``, and changing it moves that thread."""
    last = HOST_CPUS[-1]
    assert program.execute("object-add", {"qom-type": "thread-context", "id": "tc",
                                          "cpu-affinity": [last]}) == {"return": {}}
    tid = program.execute("qom-get", {"path": "/objects/tc", "property": "thread-id"})["return"]
    assert tid != program.pid
    assert Path(f"/proc/{program.pid}/task/{tid}/comm").read_text() == "TC tc\n"
    assert _allowed_cpus(program.pid, tid) == str(last)
    program.execute("qom-set", {"path": "/objects/tc", "property": "cpu-affinity",
                                "value": [HOST_CPUS[0]]})
    assert _allowed_cpus(program.pid, tid) == str(HOST_CPUS[0])


@needs_two_cpus
def test_prealloc_threads_run_in_the_context(program: Any) -> None:
    """In both programs the ``touch_pages`` threads of a backend with
    ``prealloc-context`` have the context's affinity (sampled from ``/proc``
    while the populate runs; a populate too quick to be seen is tried again)."""
    last = HOST_CPUS[-1]
    program.execute("object-add", {"qom-type": "thread-context", "id": "tc",
                                   "cpu-affinity": [last]})
    seen: dict[int, str] = {}
    for attempt in range(8):
        stop = threading.Event()

        def sample(stop: threading.Event = stop) -> None:
            while not stop.is_set():
                for task in Path(f"/proc/{program.pid}/task").iterdir():
                    try:
                        if (task / "comm").read_text().strip() == "touch_pages":
                            seen[int(task.name)] = _allowed_cpus(program.pid, int(task.name))
                    except (OSError, StopIteration):
                        pass  # the thread ended meanwhile

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            reply = program.execute("object-add", {
                "qom-type": RAM, "id": f"m{attempt}", "size": 512 << 20, "prealloc": True,
                "prealloc-threads": 2, "prealloc-context": "tc"})
        finally:
            stop.set()
            sampler.join()
        assert reply == {"return": {}}
        program.execute("object-del", {"id": f"m{attempt}"})
        if seen:
            break
    assert seen, "no touch_pages thread seen in eight populates"
    assert set(seen.values()) == {str(last)}
