"""pyqom's OSPM guest on pyqom and on real QEMU 7.2: the same command line, the
same QMP steps, the same console transcript byte for byte, the same events and
exit status.  The guest prints its entry registers, the Multiboot info and
memory map, the ACPI tables, the DIMM slots and every hotplug event it handles.

Also ``-kernel``'s refusals: the same stderr (program name aside) and status.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
from guest_kernel import (
    CONSOLE,
    booted_with_qmp_stdio,
    build_guest,
    connect_qmp,
    pyqom_command,
    pyqom_env,
    transcript,
)
from qemu_oracle import qemu_or_skip

BASE = ["-machine", "pc", "-accel", "tcg", "-display", "none", "-nodefaults"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_guest(tmp_path_factory.mktemp("guest"))


def _boot(program: list[str], args: list[str], out: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*program, *BASE, *args, "-debugcon", f"file:{out}", *CONSOLE],
                          capture_output=True, timeout=60, env=pyqom_env(), **kwargs)


@pytest.mark.parametrize("memory", [
    "128M", "100M", "1G,slots=3,maxmem=4G", "4G", "3584M", "8M",
])
def test_the_guest_sees_what_it_sees_on_qemu(kernel: str, memory: str, tmp_path: Path) -> None:
    qemu = qemu_or_skip()
    (tmp_path / "mod1").write_bytes(b"hello module\n")
    (tmp_path / "mod2").write_bytes(bytes(range(256)) * 20)
    args = ["-m", memory, "-kernel", kernel, "-append", "exit=0x10 policy words",
            "-initrd", f"{tmp_path / 'mod1'} one two,{tmp_path / 'mod2'}"]
    theirs = _boot([qemu], args, tmp_path / "qemu.out")
    mine = _boot(pyqom_command(), args, tmp_path / "pyqom.out")
    assert theirs.returncode == 33, theirs.stderr
    assert mine.returncode == 33, mine.stderr
    assert mine.stderr == theirs.stderr == b""
    expected = transcript(tmp_path / "qemu.out")
    assert expected.endswith(b"exit 0x10\n")
    assert transcript(tmp_path / "pyqom.out") == expected


class _Session:
    """What the steps of :func:`_guest_session` work with."""

    def __init__(self, client, out: Path, events: list[tuple[str, object]],
                 deadline: float) -> None:
        self.client, self.out, self.events, self.deadline = client, out, events, deadline

    async def wait_for(self, kind: str, count: int) -> None:
        while sum(1 for event in self.events if event[0] == kind) < count \
                and time.monotonic() < self.deadline:
            await asyncio.sleep(0.01)

    async def quit_after(self, words: bytes) -> None:
        """Once the guest has printed ``words`` (and nothing more came), ``quit``."""
        while words not in transcript(self.out) and time.monotonic() < self.deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)          # nothing more comes
        await self.client.execute("quit")


async def _guest_session(program: list[str], args: list[str], tmp_path: Path, name: str,
                         steps) -> tuple[bytes, list[tuple[str, object]], int]:
    """Boot with QMP on a unix socket, wait for the guest's ``ready``, run
    ``steps(session)`` while collecting events, then wait for the process to
    end; (transcript, events, status)."""
    sock, out = tmp_path / f"{name}.sock", tmp_path / f"{name}.out"
    process = subprocess.Popen([*program, *BASE, *args, "-debugcon", f"file:{out}", *CONSOLE,
                                "-qmp", f"unix:{sock},server=on,wait=off"],
                               env=pyqom_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    events: list[tuple[str, object]] = []
    try:
        deadline = time.monotonic() + 30
        client = await connect_qmp(name, sock)
        while b"ready\n" not in transcript(out) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

        async def collect() -> None:
            async for event in client.events:
                events.append((event["event"], event.get("data")))

        collector = asyncio.ensure_future(collect())
        await steps(_Session(client, out, events, deadline))
        status = await asyncio.get_running_loop().run_in_executor(None, process.wait, 30)
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        with contextlib.suppress(EOFError):   # the process is gone: the guest ended it
            await client.disconnect()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return transcript(out), events, status


async def _hotplug_session(program: list[str], args: list[str], tmp_path: Path,
                           name: str, last_words: bytes | None = None,
                           dimm: dict[str, object] | None = None
                           ) -> tuple[bytes, list[tuple[str, object]], int]:
    """Boot, wait for the guest, plug a DIMM, unplug it; (transcript, events, status).

    Without ``last_words`` the guest ends the run itself (``events=2``); with
    them, ``quit`` follows once the guest has printed them."""
    async def steps(session: _Session) -> None:
        client = session.client
        await client.execute("object-add", {"qom-type": "memory-backend-ram", "id": "m1",
                                            "size": 256 << 20})
        await client.execute("device_add", {"driver": "pc-dimm", "id": "d1", "memdev": "m1",
                                            **(dimm or {})})
        await session.wait_for("ACPI_DEVICE_OST", 1)
        await client.execute("device_del", {"id": "d1"})
        if last_words is None:
            await session.wait_for("DEVICE_DELETED", 1)
        else:
            await session.quit_after(last_words)

    return await _guest_session(program, args, tmp_path, name, steps)


@pytest.mark.parametrize("append", ["", "sci"])
def test_a_dimm_plugged_onlined_unplugged_and_ejected_as_on_qemu(kernel: str, tmp_path: Path,
                                                               append: str) -> None:
    """Polling GPE0, or (``sci``) waiting with ``sti; hlt`` for the SCI: IRQ 9
    through the 8259s the guest programmed, into its IDT.

    The run ends with ``quit`` once the guest has ejected, not with the guest's
    own ``events=2`` exit: QEMU's vCPU can eject and exit before its monitor
    has sent the reply to ``device_del``, and the client then sees a hang-up."""
    qemu = qemu_or_skip()
    args = ["-m", "128M,slots=4,maxmem=2G", "-kernel", kernel, "-append", append]
    ejected = b"ejected slot 0\n"
    theirs = asyncio.run(_hotplug_session([qemu], args, tmp_path, "qemu", ejected))
    mine = asyncio.run(_hotplug_session(pyqom_command(), args, tmp_path, "pyqom", ejected))
    assert theirs[2] == 0
    assert any(kind == "DEVICE_DELETED" for kind, _ in theirs[1])
    assert b"insert slot 0 addr 0x100000000 size 0x10000000 node 0\n" in theirs[0]
    assert b"ejected slot 0\n" in theirs[0]
    assert mine == theirs


#: two NUMA nodes from memdevs (one across the 640K hole, one above 4 GiB),
#: four CPUs placed by socket, distances, memory hotplug
NUMA_ARGS = ["-m", "4G,slots=2,maxmem=6G", "-smp", "4,sockets=2,cores=2",
             "-object", "memory-backend-ram,id=n0,size=3G",
             "-object", "memory-backend-ram,id=n1,size=1G",
             "-numa", "node,nodeid=0,memdev=n0", "-numa", "node,nodeid=1,memdev=n1",
             "-numa", "cpu,node-id=0,socket-id=0", "-numa", "cpu,node-id=1,socket-id=1",
             "-numa", "dist,src=0,dst=1,val=21"]


def test_the_guest_sees_the_numa_machine_it_sees_on_qemu(kernel: str, tmp_path: Path) -> None:
    """Its RAM from two node backends (the kernel loaded into them, the tables
    too), and the SRAT the guest prints: a CPU entry per possible CPU with its
    node, each node's memory, the hotplug window."""
    qemu = qemu_or_skip()
    args = [*NUMA_ARGS, "-kernel", kernel, "-append", "exit=0x10"]
    theirs = _boot([qemu], args, tmp_path / "qemu.out")
    mine = _boot(pyqom_command(), args, tmp_path / "pyqom.out")
    assert theirs.returncode == mine.returncode == 33, (theirs.stderr, mine.stderr)
    assert mine.stderr == theirs.stderr
    expected = transcript(tmp_path / "qemu.out")
    assert b"srat cpu apic 0x2 node 0x1" in expected
    assert transcript(tmp_path / "pyqom.out") == expected


def test_a_dimm_plugged_on_node_1_as_on_qemu(kernel: str, tmp_path: Path) -> None:
    """The guest reads the inserted DIMM's node from the register block (what
    the AML's ``_PXM`` returns): 1, on both."""
    qemu = qemu_or_skip()
    args = [*NUMA_ARGS, "-kernel", kernel, "-append", ""]
    ejected = b"ejected slot 0\n"
    theirs = asyncio.run(_hotplug_session([qemu], args, tmp_path, "qemu", ejected,
                                          {"node": 1}))
    mine = asyncio.run(_hotplug_session(pyqom_command(), args, tmp_path, "pyqom", ejected,
                                        {"node": 1}))
    assert theirs[2] == 0
    assert b" node 1\n" in theirs[0]
    assert mine == theirs


@pytest.mark.parametrize(("policy", "last_words"), [
    ("never-online", b"ejected slot 0\n"),
    ("never-eject", b"ignored slot 0\n"),
    ("ost-fail", b"ost slot 0 event 0x103 status 0x1\n"),
])
def test_guest_policies_users_hit_are_as_on_qemu(kernel: str, tmp_path: Path, policy: str,
                                                last_words: bytes) -> None:
    """The OSPM failures users meet: memory left offline, an unplug the guest
    ignores (the DIMM stays), failure statuses in ``_OST``."""
    qemu = qemu_or_skip()
    args = ["-m", "128M,slots=4,maxmem=2G", "-kernel", kernel, "-append", policy]
    theirs = asyncio.run(_hotplug_session([qemu], args, tmp_path, "qemu", last_words))
    mine = asyncio.run(_hotplug_session(pyqom_command(), args, tmp_path, "pyqom", last_words))
    assert theirs[2] == 0 and last_words in theirs[0]
    assert mine == theirs


def test_acpi_poweroff_ends_the_run_as_on_qemu(kernel: str, tmp_path: Path) -> None:
    """S5 through PM1a_CNT: SHUTDOWN (guest: true, guest-shutdown), status 0.  What
    the guest prints after its power-off write depends on timing, so the
    transcripts are compared up to it.  The guest starts (``-S``, then ``cont``)
    only once the client has negotiated: an event before that reaches nobody."""
    qemu = qemu_or_skip()
    runs = []
    for name, program in (("qemu", [qemu]), ("pyqom", pyqom_command())):
        out = tmp_path / f"{name}.out"
        done = subprocess.run(
            [*program, *BASE, "-S", "-m", "128M", "-kernel", kernel, "-append", "poweroff",
             "-debugcon", f"file:{out}", *CONSOLE, "-qmp", "stdio"],
            input=b'{"execute":"qmp_capabilities"}\n{"execute":"cont"}\n',
            capture_output=True, timeout=60, env=pyqom_env())
        text = transcript(out)
        events = [line.split(b'"event": ')[1] for line in done.stdout.splitlines()
                  if b'"event"' in line]
        runs.append((done.returncode, events, text[:text.index(b"poweroff\n")]))
    assert runs[0][0] == 0
    assert runs[0][1] == [b'"RESUME"}',
                          b'"SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}']
    assert runs[1] == runs[0]


@pytest.mark.parametrize("append", ["powerbutton", "powerbutton sci"])
def test_system_powerdown_reaches_the_guest_as_on_qemu(kernel: str, tmp_path: Path,
                                                       append: str) -> None:
    """``system_powerdown``: POWERDOWN, the ACPI power button (seen by polling PM1, or
    through the SCI), the guest's S5 power-off: SHUTDOWN guest-shutdown, status 0."""
    qemu = qemu_or_skip()
    runs = []
    for name, program in (("qemu", [qemu]), ("pyqom", pyqom_command())):
        out = tmp_path / f"{name}.out"
        with booted_with_qmp_stdio(
                program, [*BASE, "-m", "128M,slots=2,maxmem=1G", "-kernel", kernel,
                          "-append", append, "-debugcon", f"file:{out}", *CONSOLE],
                out) as process:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(b'{"execute":"system_powerdown"}\n')
            process.stdin.flush()
            output = process.stdout.read()
            status = process.wait(30)
        events = [line.split(b'"event": ')[1] for line in output.splitlines()
                  if b'"event"' in line]
        text = transcript(out)
        runs.append((status, events, text[:text.index(b"poweroff\n") + 9]))
    assert runs[0][0] == 0
    assert runs[0][1] == [b'"POWERDOWN"}',
                          b'"SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}']
    assert runs[0][2].endswith(b"power button\npoweroff\n")
    assert runs[1] == runs[0]


def _elf64(path: Path) -> None:
    header = struct.pack("<III", 0x1BADB002, 3, (-(0x1BADB002 + 3)) & 0xFFFFFFFF)
    elf = bytearray(0x200)
    elf[:4] = b"\x7fELF"
    elf[4], elf[5] = 2, 1
    struct.pack_into("<H", elf, 18, 62)
    elf[0x100:0x100 + 12] = header
    path.write_bytes(bytes(elf))


@pytest.mark.parametrize(("args", "setup"), [
    (["-kernel", "{tmp}/nonexistent"], None),
    (["-kernel", "{tmp}"], None),
    (["-kernel", "{tmp}/k64"], _elf64),
    (["-kernel", "{kernel}", "-initrd", "{tmp}/missing arg"], None),
    (["-kernel", "{kernel}", "-initrd", ",{tmp}/x"], None),
    (["-append", "x"], None),
    (["-initrd", "x"], None),
    (["-append", "x", "-initrd", "y"], None),
])
def test_kernel_refusals_are_qemus(kernel: str, tmp_path: Path, args: list[str],
                                   setup: object) -> None:
    qemu = qemu_or_skip()
    if callable(setup):
        setup(tmp_path / "k64")
    argv = [arg.format(tmp=tmp_path, kernel=kernel) for arg in args]
    theirs = subprocess.run([qemu, *BASE, "-m", "128M", *argv], capture_output=True,
                            timeout=30)
    mine = subprocess.run([*pyqom_command(), *BASE, "-m", "128M", *argv], capture_output=True,
                          timeout=30, env=pyqom_env())
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout)
    assert theirs.returncode == 1
    assert mine.stderr == theirs.stderr.replace(b"qemu-system-x86_64: ", b"pyqom: "), \
        (mine.stderr, theirs.stderr)


def test_the_shipped_guest_is_the_one_the_source_builds(kernel: str) -> None:
    """The copy in the package boots the same way (it may differ in bytes with
    another compiler, so its transcript is what is compared)."""
    from pyqom.guest import kernel_path

    shipped = kernel_path()
    assert os.path.exists(shipped)
    runs = []
    for path in (kernel, shipped):
        out = Path(path).with_suffix(".check.out") if path == kernel else \
            Path(kernel).with_name("shipped.check.out")
        done = _boot(pyqom_command(), ["-m", "64M", "-kernel", path, "-append", "exit=1"], out)
        assert done.returncode == 3, done.stderr
        runs.append(transcript(out).replace(path.encode(), b"KERNEL"))
    assert runs[0] == runs[1]


@pytest.mark.parametrize(("persistence", "backend"), [
    ("", ""), (",nvdimm-persistence=cpu", ""), ("", ",pmem=on"),
])
def test_nvdimm_labels_through_the_dsm_port_as_on_qemu(kernel: str, tmp_path: Path,
                                                       persistence: str, backend: str) -> None:
    """The guest finds the NFIT and the NVDIMM SSDT, and calls each NVDIMM's label
    functions the way the SSDT's _DSM does (the DSM page, port 0x0a18): the same
    transcript on both, and the label it writes lands in the backend file at the
    label area's offset (the file's last 128 KiB) on both."""
    qemu = qemu_or_skip()
    runs = []
    for name, program in (("qemu", [qemu]), ("pyqom", pyqom_command())):
        backing = tmp_path / f"{name}.pmem"
        backing.write_bytes(bytes(256 << 20))
        args = ["-M", f"pc,nvdimm=on{persistence}", "-m", "512M,slots=2,maxmem=4G",
                "-object", f"memory-backend-file,id=f1,size=256M,share=on,mem-path={backing}"
                           f"{backend}",
                "-device", "nvdimm,id=nv1,memdev=f1,label-size=128K",
                "-kernel", kernel, "-append", "nvdimm exit=0x10"]
        done = _boot(program, args, tmp_path / f"{name}.out")
        assert done.returncode == 33, done.stderr
        with backing.open("rb") as file:
            file.seek((256 << 20) - (128 << 10) + 0x40)
            label = file.read(16)
        runs.append((transcript(tmp_path / f"{name}.out"), label))
    expected = runs[0][0]
    fit = 4 + 56 + 48 + 80 + (16 if persistence else 0)   # its length, 3 structures, caps
    assert f"nvdimm read fit result {fit} status 0x0 same as nfit\n".encode() in expected
    assert b"nvdimm handle 0x1 write offset 0x40 length 0x10 result 4 status 0x0\n" in expected
    assert runs[0][1] == b"pyqom-label-0001"
    assert runs[1] == runs[0]


async def _nvdimm_hotplug_session(program: list[str], args: list[str], tmp_path: Path,
                                  name: str) -> tuple[bytes, list[tuple[str, object]], int]:
    """Boot, wait for the guest, hot-plug an NVDIMM, wait until the guest has read
    the FIT again, ``quit``; (transcript, events, status)."""
    async def steps(session: _Session) -> None:
        await session.client.execute("object-add", {"qom-type": "memory-backend-ram",
                                                    "id": "m2", "size": 128 << 20})
        await session.client.execute("device_add", {"driver": "nvdimm", "id": "nv2",
                                                    "memdev": "m2", "label-size": 256 << 10})
        await session.quit_after(b"nvdimm fit length")

    console, events, status = await _guest_session(program, args, tmp_path, name, steps)
    return console, [event for event in events if event[0] != "SHUTDOWN"], status


def test_an_nvdimm_hot_plug_reaches_the_guest_through_gpe_4_and_the_fit_as_on_qemu(
        kernel: str, tmp_path: Path) -> None:
    """GPE0 bit 4 (QEMU's ``\\_GPE._E04``), then the FIT read as ``_FIT`` reads
    it: the new NVDIMM is in it, after the cold-plugged one."""
    qemu = qemu_or_skip()
    args = ["-M", "pc,nvdimm=on", "-m", "512M,slots=2,maxmem=4G",
            "-object", "memory-backend-ram,id=m1,size=128M",
            "-device", "nvdimm,id=nv1,memdev=m1,label-size=128K",
            "-kernel", kernel, "-append", "nvdimm"]
    theirs = asyncio.run(_nvdimm_hotplug_session([qemu], args, tmp_path, "qemu"))
    mine = asyncio.run(_nvdimm_hotplug_session(pyqom_command(), args, tmp_path, "pyqom"))
    assert theirs[2] == 0
    assert b"nvdimm hotplug event\nnvdimm fit length 368 restarts 0\n" in theirs[0]
    assert b"fit map handle 0x2 spa 4 dcr 5 length 0x7e00000 flags 0x0\n" in theirs[0]
    assert mine == theirs
