"""The plans (pyqom additions) against what real QEMU 7.2 then does.

* ``x-plan-plug``: for each machine state and request, pyqom's plan says
  "fits at slot S, address X" exactly when QEMU's ``device_add`` puts the
  DIMM at slot S, address X (``query-memory-devices``), and gives QEMU's
  error class and message exactly when QEMU refuses.
* ``x-query-memory-capacity``: the largest DIMM it reports plugs on QEMU,
  and one alignment step more is refused by QEMU.
* ``-x-check-config``: exit status 0 exactly when QEMU boots the same
  ``-m``/``-cpu``, QEMU's own message when it does not, and the largest
  ``maxmem`` it names boots on QEMU while one page more does not.
"""

from __future__ import annotations

import io
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyqom_side import PyqomQmp
from qemu_oracle import QemuOracle, qemu_command_line, stderr_messages

from plugins.monitor import VmControl
from pyqom.cli import main
from pyqom.vm import VM

M, G = 1 << 20, 1 << 30

Step = tuple[str, dict[str, Any]]


def ram(name: str, size: int, **extra: Any) -> Step:
    return ("object-add", {"qom-type": "memory-backend-ram", "id": name, "size": size,
                           **extra})


def memfd(name: str, size: int) -> Step:
    return ("object-add", {"qom-type": "memory-backend-memfd", "id": name, "size": size})


def dimm(name: str, memdev: str, **props: Any) -> Step:
    return ("device_add", {"driver": "pc-dimm", "id": name, "memdev": memdev, **props})


@attrs.frozen
class Case:
    name: str
    memory: str
    setup: tuple[Step, ...]
    request: tuple[Step, ...]
    cpu: str = "qemu64"


CASES = [
    Case("first", "1G,slots=3,maxmem=4G", (), (ram("m1", G), dimm("d1", "m1"))),
    Case("after two", "1G,slots=3,maxmem=4G",
         (ram("a", G), dimm("da", "a"), ram("b", 512 * M), dimm("db", "b")),
         (ram("m1", 512 * M), dimm("d1", "m1"))),
    Case("into a hole", "1G,slots=4,maxmem=8G",
         (ram("a", G), dimm("da", "a", addr=str(6 * G))),
         (ram("m1", 2 * G), dimm("d1", "m1"))),
    Case("too big for the hole", "1G,slots=4,maxmem=8G",
         (ram("a", G), dimm("da", "a", addr=str(6 * G))),
         (ram("m1", 3 * G), dimm("d1", "m1"), ram("m2", 2 * G), dimm("d2", "m2"))),
    Case("a chosen slot", "1G,slots=3,maxmem=4G", (ram("a", G), dimm("da", "a")),
         (ram("m1", G), dimm("d1", "m1", slot="2"))),
    Case("a busy slot", "1G,slots=3,maxmem=4G", (ram("a", G), dimm("da", "a")),
         (ram("m1", G), dimm("d1", "m1", slot="0"))),
    Case("no slot left", "1G,slots=1,maxmem=4G", (ram("a", G), dimm("da", "a")),
         (ram("m1", G), dimm("d1", "m1"))),
    Case("not enough space", "1G,slots=3,maxmem=4G", (ram("a", 2 * G), dimm("da", "a")),
         (ram("m1", 2 * G), dimm("d1", "m1"))),
    Case("unaligned address", "1G,slots=3,maxmem=4G", (),
         (ram("m1", G), dimm("d1", "m1", addr=str(4 * G + M)))),
    Case("address taken", "1G,slots=3,maxmem=4G", (ram("a", G), dimm("da", "a")),
         (ram("m1", G), dimm("d1", "m1", addr=str(4 * G)))),
    Case("outside the region", "1G,slots=3,maxmem=4G", (),
         (ram("m1", G), dimm("d1", "m1", addr=str(2 * G)))),
    Case("size not a multiple", "1G,slots=3,maxmem=4G", (),
         (ram("m1", 3 * M), dimm("d1", "m1"))),
    Case("memfd, page aligned", "1G,slots=3,maxmem=4G", (ram("a", 3 * M), ),
         (memfd("m1", 3 * M), dimm("d1", "m1"))),
    Case("busy memdev", "1G,slots=3,maxmem=4G", (ram("a", G), dimm("da", "a")),
         (dimm("d1", "a"),)),
    Case("duplicate device id", "1G,slots=3,maxmem=4G", (ram("a", G), dimm("da", "a")),
         (ram("m1", G), dimm("da", "m1"))),
    Case("NUMA node", "1G,slots=3,maxmem=4G", (), (ram("m1", G), dimm("d1", "m1", node="1"))),
    Case("no hotplug", "1G", (), (ram("m1", G), dimm("d1", "m1"))),
    Case("RAM above 4G", "5G,slots=2,maxmem=8G", (), (ram("m1", G), dimm("d1", "m1"))),
    Case("AMD hole", "4G,slots=2,maxmem=1T", (), (ram("m1", 2 * G), dimm("d1", "m1")),
         cpu="qemu64,phys-bits=48"),
    Case("no AMD hole on Intel", "4G,slots=2,maxmem=1T", (),
         (ram("m1", 2 * G), dimm("d1", "m1")), cpu="qemu64,phys-bits=48,vendor=GenuineIntel"),
    Case("a list", "1G,slots=3,maxmem=6G", (),
         (ram("m1", G), dimm("d1", "m1"), ram("m2", 2 * G), dimm("d2", "m2", slot="2"),
          ram("m3", 2 * G), dimm("d3", "m3"))),
]


def _qemu_outcome(oracle: QemuOracle, steps: tuple[Step, ...]) -> dict[str, Any]:
    """Run ``steps`` on QEMU up to the first refusal: the plan it should match."""
    for index, (command, arguments) in enumerate(steps):
        reply = oracle.execute(command, arguments)
        if "error" in reply:
            return {"fits": False, "failed": index, "error": reply["error"]}
    devices = {entry["data"].get("id"): entry["data"]
               for entry in oracle.execute("query-memory-devices")["return"]}
    placed = [{"id": arguments["id"], "slot": devices[arguments["id"]]["slot"],
               "addr": devices[arguments["id"]]["addr"]}
              for command, arguments in steps if command == "device_add"]
    return {"fits": True, "devices": placed}


def _plan(answer: dict[str, Any]) -> dict[str, Any]:
    if not answer["fits"]:
        return {"fits": False, "failed": answer["failed"], "error": answer["error"]}
    return {"fits": True, "devices": [{"id": d["id"], "slot": d["slot"], "addr": d["addr"]}
                                      for d in answer["devices"]]}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_plan_says_what_qemu_does(case: Case) -> None:
    args = ("-m", case.memory, "-cpu", case.cpu)
    oracle = QemuOracle(*args)
    try:
        with VM.from_args(list(args)) as vm:
            control = VmControl(vm)
            qmp = PyqomQmp(control)
            try:
                for command, arguments in case.setup:
                    assert qmp.execute(command, arguments) == oracle.execute(command, arguments)
                requests = [{"execute": command, "arguments": arguments}
                            for command, arguments in case.request]
                answer = qmp.execute("x-plan-plug", {"requests": requests})
                assert "return" in answer, answer
                before = qmp.execute("query-memory-devices", {})
                expected = _qemu_outcome(oracle, case.request)
                assert _plan(answer["return"]) == expected
                assert qmp.execute("query-memory-devices", {}) == before
                # and pyqom's own plug does what its plan said (and what QEMU did)
                assert _qemu_outcome(_PyqomOracle(qmp), case.request) == expected
            finally:
                qmp.close()
                control.close()
    finally:
        oracle.close()


@pytest.mark.parametrize("content,size", [(None, 2 * M), (b"", 4 * M), (b"x" * 4096, 2 * M),
                                          (b"x" * (8 * M), 2 * M), (None, 3 * 4096)])
def test_a_file_backend_plan_says_what_qemu_does(tmp_path: Any, content: bytes | None,
                                                 size: int) -> None:
    results = []
    for side in ("qemu", "pyqom"):
        path = tmp_path / side
        if content is not None:
            path.write_bytes(content)
        steps = (("object-add", {"qom-type": "memory-backend-file", "id": "f", "size": size,
                                 "mem-path": str(path), "share": True}),
                 dimm("d1", "f"))
        if side == "qemu":
            oracle = QemuOracle("-m", "1G,slots=2,maxmem=4G")
            try:
                results.append(_qemu_outcome(oracle, steps))
            finally:
                oracle.close()
            continue
        with VM.from_args(["-m", "1G,slots=2,maxmem=4G"]) as vm:
            control = VmControl(vm)
            qmp = PyqomQmp(control)
            try:
                answer = qmp.execute("x-plan-plug", {"requests": [
                    {"execute": command, "arguments": arguments}
                    for command, arguments in steps]})
                results.append(_plan(answer["return"]))
            finally:
                qmp.close()
                control.close()
    qemu, pyqom = results
    if not qemu["fits"]:   # the message names the file, which differs by side
        qemu["error"]["desc"] = qemu["error"]["desc"].replace(str(tmp_path / "qemu"), "FILE")
        pyqom["error"]["desc"] = pyqom["error"]["desc"].replace(str(tmp_path / "pyqom"), "FILE")
    assert pyqom == qemu


@attrs.define
class _PyqomOracle:
    """pyqom's QMP session where :func:`_qemu_outcome` expects QEMU's."""

    qmp: PyqomQmp

    def execute(self, command: str, arguments: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        return self.qmp.execute(command, arguments or {})


@pytest.mark.parametrize("memory,setup", [
    ("1G,slots=4,maxmem=8G", (ram("a", G), dimm("da", "a", addr=str(5 * G)),
                              ram("b", G), dimm("db", "b", addr=str(8 * G)))),
    ("1G,slots=3,maxmem=4G", (ram("a", 512 * M), dimm("da", "a"))),
])
def test_the_largest_dimm_is_what_qemu_takes(memory: str, setup: tuple[Step, ...]) -> None:
    with VM.from_args(["-m", memory]) as vm:
        control = VmControl(vm)
        qmp = PyqomQmp(control)
        try:
            for command, arguments in setup:
                qmp.execute(command, arguments)
            capacity = qmp.execute("x-query-memory-capacity", {"alignments": [2 * M]})
        finally:
            qmp.close()
            control.close()
    largest = capacity["return"]["largest-dimm"][0]["size"]
    assert largest > 0
    for size, fits in ((largest, True), (largest + 2 * M, False)):
        oracle = QemuOracle("-m", memory)
        try:
            for command, arguments in setup:
                assert "return" in oracle.execute(command, arguments)
            outcome = _qemu_outcome(oracle, (ram("x", size), dimm("dx", "x")))
            assert outcome["fits"] is fits, (size, outcome)
        finally:
            oracle.close()


CONFIGS = [
    ("-m", "1G,slots=256,maxmem=751G"),
    ("-m", "1G,slots=256,maxmem=752G"),
    ("-m", "128M,slots=256,maxmem=750G"),
    ("-m", "128M,slots=256,maxmem=751G"),
    ("-m", "1G,slots=257,maxmem=2G"),
    ("-m", "1G,slots=16,maxmem=1T", "-cpu", "qemu64,phys-bits=41"),
    ("-m", "1G,slots=16,maxmem=1T", "-cpu", "qemu64,phys-bits=48"),
    ("-m", "1G,slots=2,maxmem=40G", "-cpu", "qemu64,phys-bits=36"),
    ("-m", "1G,slots=2,maxmem=16G", "-cpu", "qemu64,phys-bits=36"),
    ("-m", "1G,slots=2,maxmem=8G", "-cpu", "max,phys-bits=33"),
    ("-m", "1G,slots=2,maxmem=8G", "-cpu", "qemu64,phys-bits=53"),
    ("-m", "2G,slots=2,maxmem=1G"),
    ("-m", "1G,slots=2,maxmem=4097M"),
    ("-m", "1G,slots=2,maxmem=8G", "-machine", "pc-i440fx-2.0"),
    ("-m", "1G,slots=16,maxmem=1000G", "-cpu", "qemu64,vendor=GenuineIntel"),
    ("-m", "1G,slots=16,maxmem=1000G", "-cpu", "qemu64,vendor=AuthenticAMD"),
    ("-m", "1G,slots=16,maxmem=1000G", "-cpu", "qemu64,vendor=xyz"),
    ("-m", "4G,slots=2,maxmem=1T", "-cpu", "max,phys-bits=44,vendor=GenuineIntel"),
]


def _check_config(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main([*args, "-x-check-config"], stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("args", CONFIGS, ids=[" ".join(args) for args in CONFIGS])
def test_check_config_boots_when_qemu_boots(args: tuple[str, ...]) -> None:
    result = qemu_command_line(*args)
    status, out, err = _check_config(list(args))
    assert status == result.returncode, (out, err, result.stderr)
    if status:
        # QEMU's reason first (as pyqom prints it after its program name), then the
        # largest maxmem that would boot
        messages = [line.removeprefix("pyqom: ") for line in err.splitlines()]
        qemu_messages = stderr_messages(result.stderr, args)
        assert messages[:len(qemu_messages)] == qemu_messages
    else:
        assert out.startswith("boots: ")


@pytest.mark.parametrize("memory,cpu", [
    ("1G,slots=256,maxmem=2T", "qemu64"),
    ("128M,slots=256,maxmem=2T", "qemu64"),
    ("1G,slots=16,maxmem=4T", "qemu64,phys-bits=41"),
    ("1G,slots=2,maxmem=1T", "qemu64,phys-bits=36"),
    ("1G,slots=16,maxmem=2T", "qemu64,vendor=GenuineIntel"),
    ("1G,slots=16,maxmem=8T", "qemu64,phys-bits=42,vendor=GenuineIntel"),
])
def test_the_largest_maxmem_boots_on_qemu(memory: str, cpu: str) -> None:
    status, _, err = _check_config(["-m", memory, "-cpu", cpu])
    assert status == 1
    largest = int(err.rsplit("(0x", 1)[1].split(")")[0], 16)
    ram_and_slots = memory.rsplit(",maxmem=", 1)[0]
    for maxmem, boots in ((largest, True), (largest + 4096, False)):
        args = ("-m", f"{ram_and_slots},maxmem={maxmem}B", "-cpu", cpu)
        assert qemu_command_line(*args).returncode == (0 if boots else 1), args
        assert _check_config(list(args))[0] == (0 if boots else 1), args


# -- random machines and requests, against QEMU ---------------------------------

#: mostly sizes that fit somewhere, now and then 0 and a size that is no 2 MiB multiple
SIZES = st.sampled_from([2 * M, 128 * M, 512 * M, G, 2 * G, 3 * G] * 3 + [0, 3 * M])
ADDRESSES = st.sampled_from([4 * G, 5 * G, 6 * G, 4 * G + 2 * M, 4 * G + 4096, 9 * G, 3 * G])


@st.composite
def random_cases(draw: st.DrawFn) -> tuple[str, tuple[Step, ...], tuple[Step, ...]]:
    memory = (f"{draw(st.sampled_from(['1G', '3584M', '4G']))},"
              f"slots={draw(st.integers(1, 4))},"
              f"maxmem={draw(st.sampled_from(['5G', '8G', '9G', '7170M']))}")
    setup: list[Step] = []
    for index in range(draw(st.integers(0, 2))):
        setup.append(ram(f"p{index}", draw(st.sampled_from([512 * M, G]))))
        props = {"addr": str(draw(ADDRESSES))} if draw(st.booleans()) else {}
        setup.append(dimm(f"pd{index}", f"p{index}", **props))
    request: list[Step] = []
    for index in range(draw(st.integers(1, 3))):
        name = f"m{index}"
        kind = draw(st.sampled_from([ram, ram, memfd]))
        request.append(kind(name, draw(SIZES)))
        props = {}
        if draw(st.integers(0, 3)) == 0:
            props["slot"] = str(draw(st.integers(-1, 5)))
        if draw(st.integers(0, 3)) == 0:
            props["addr"] = str(draw(ADDRESSES))
        request.append(dimm(f"d{index}", name, **props))
    return memory, tuple(setup), tuple(request)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_cases())
def test_random_plans_say_what_qemu_does(
        case: tuple[str, tuple[Step, ...], tuple[Step, ...]]) -> None:
    memory, setup, request = case
    oracle = QemuOracle("-m", memory)
    try:
        with VM.from_args(["-m", memory]) as vm:
            control = VmControl(vm)
            qmp = PyqomQmp(control)
            try:
                for command, arguments in setup:
                    assert qmp.execute(command, arguments) == oracle.execute(command, arguments)
                answer = qmp.execute("x-plan-plug", {"requests": [
                    {"execute": command, "arguments": arguments}
                    for command, arguments in request]})
                expected = _qemu_outcome(oracle, request)
                assert _plan(answer["return"]) == expected
                event("fits" if expected["fits"] else expected["error"]["desc"][:30])
            finally:
                qmp.close()
                control.close()
    finally:
        oracle.close()
