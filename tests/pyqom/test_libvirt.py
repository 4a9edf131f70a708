"""libvirt drives pyqom: the README's domain (pyqom as ``<emulator>``, its OSPM
guest as ``<kernel>``) defined, started, given a DIMM with ``attach-device``,
shown by ``dumpxml``, the DIMM taken back with ``detach-device`` (the guest
ejects it), destroyed and undefined, all with the real ``virsh``; with one
and with two NUMA cells; and a guest that refuses the unplug (libvirt says
so) and powers off on ``virsh shutdown``.

The daemon is Debian's ``libvirtd`` (``libvirt-daemon-system``; CI installs
it), started by hand as root with a private configuration: in a mount
namespace of its own its configuration, cache (no stale capabilities of an
earlier pyqom), state, run and log directories are a scratch directory's, and
its socket is in that directory, so nothing of the host's libvirt is touched.
It ends by its PID.  Tests skip, saying why, without libvirt, root or
``unshare``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest_kernel import build_guest

ROOT = Path(__file__).resolve().parents[2]
#: what libvirtd (as root) would use; bound over by the scratch directory's own
LIBVIRT_DIRS = {"etc": "/etc/libvirt", "cache": "/var/cache/libvirt", "run": "/run/libvirt",
                "lib": "/var/lib/libvirt", "log": "/var/log/libvirt"}
DOMAIN = "pyqom-dimm"
README_TEXT = (ROOT / "README.md").read_text()


def _readme_block(marker: str) -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(f"<!-- {marker} -->")
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[fence + 1:end]) + "\n"


class Libvirtd:
    """A private ``libvirtd`` and ``virsh`` against it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.uri = f"qemu:///system?socket={base / 'sock' / 'libvirt-sock'}"
        for name in (*LIBVIRT_DIRS, "sock"):
            (base / name).mkdir(parents=True, exist_ok=True)
        (base / "etc" / "libvirtd.conf").write_text(
            f'unix_sock_dir = "{base / "sock"}"\n'
            'unix_sock_rw_perms = "0700"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
            'log_filters = "1:qemu.qemu_monitor 1:qemu.qemu_process 3:util 3:rpc"\n'
            f'log_outputs = "1:file:{base / "libvirtd.log"}"\n')
        (base / "etc" / "qemu.conf").write_text(_readme_block("libvirt-qemu-conf"))
        mounts = " && ".join(f"mount --bind {base / name} {target}"
                             for name, target in LIBVIRT_DIRS.items())
        self.process = subprocess.Popen(
            ["unshare", "-m", "sh", "-c",
             f"{mounts} && exec libvirtd -f /etc/libvirt/libvirtd.conf"],
            stdout=subprocess.DEVNULL, stderr=(base / "libvirtd.err").open("wb"))
        self._wait_listening(base / "sock" / "libvirt-sock")

    def _wait_listening(self, path: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"libvirtd exited ({self.process.returncode}): "
                                     f"{(self.base / 'libvirtd.err').read_text()}")
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(path))
                return
            time.sleep(0.05)
        raise AssertionError("libvirtd did not listen within 60 s")

    def virsh(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True,
                              text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"virsh {' '.join(args)}: {done.stderr.strip()}\n"
                                 f"{self.domain_log()}")
        return done.stdout

    def domain_log(self) -> str:
        log = self.base / "log" / "qemu" / f"{DOMAIN}.log"
        return log.read_text()[-3000:] if log.exists() else ""

    def stop(self) -> None:
        """Destroy what still runs, then end the daemon by its PID."""
        if self.process.poll() is None:
            for name in self.virsh("list", "--name", check=False).split():
                self.virsh("destroy", name, check=False)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _libvirt_or_skip() -> None:
    missing = [tool for tool in ("libvirtd", "virsh", "unshare") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: apt-get install "
                    "libvirt-daemon-system libvirt-clients); CI installs them")
    if os.geteuid() != 0:
        pytest.skip("libvirt's system daemon runs as root: run the tests as root")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace for a private libvirtd: {probe.stderr.strip()}")
    if any(not Path(target).is_dir() for target in LIBVIRT_DIRS.values()):
        pytest.skip("libvirt's directories are missing (libvirt-daemon-system not set up)")


@pytest.fixture(scope="module")
def libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libvirtd]:
    _libvirt_or_skip()
    daemon = Libvirtd(tmp_path_factory.mktemp("libvirt"))
    try:
        yield daemon
    finally:
        daemon.stop()


def _pyqom_program() -> str:
    """The installed ``pyqom`` (the script beside this interpreter)."""
    program = Path(sys.executable).parent / "pyqom"
    if not program.exists():
        pytest.skip("no installed pyqom script beside the interpreter (pip install .)")
    return str(program)


def _until(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_virsh_sees_pyqom(libvirtd: Libvirtd) -> None:
    """The probe: ``domcapabilities`` of the pyqom binary, type ``qemu`` (TCG)."""
    caps = libvirtd.virsh("domcapabilities", "--emulatorbin", _pyqom_program(),
                          "--virttype", "qemu")
    assert f"<path>{_pyqom_program()}</path>" in caps
    assert "<domain>qemu</domain>" in caps
    assert "<machine>pc-i440fx-7.2</machine>" in caps
    assert "<arch>x86_64</arch>" in caps
    assert "<vcpu max='255'/>" in caps


def _domain_files(tmp_path: Path, *, cmdline: str = "") -> tuple[Path, Path]:
    """The README's domain for this test's pyqom and guest, and its DIMM."""
    kernel = build_guest(tmp_path)
    console = tmp_path / "console.txt"
    xml = (_readme_block("libvirt-domain")
           .replace("/path/to/pyqom/.venv/bin/pyqom", _pyqom_program())
           .replace("/path/to/pyqom/pyqom/guest/ospm.elf", kernel)
           .replace("/tmp/pyqom-guest.txt", str(console)))
    if cmdline:
        xml = xml.replace("</kernel>", f"</kernel>\n    <cmdline>{cmdline}</cmdline>")
    (tmp_path / "domain.xml").write_text(xml)
    (tmp_path / "dimm.xml").write_text(_readme_block("libvirt-dimm"))
    return tmp_path / "domain.xml", console


def _dimm(libvirtd: Libvirtd) -> str:
    live = libvirtd.virsh("dumpxml", DOMAIN)
    found = re.search(r"<memory model='dimm'>.*?</memory>", live, re.S)
    assert found is not None, live
    return found.group(0)


def test_a_guest_that_refuses_and_a_guest_that_powers_off(libvirtd: Libvirtd,
                                                          tmp_path: Path) -> None:
    """The guest's ``_OST`` refusal (``ost-fail``) reaches libvirt as QEMU's
    ``ACPI_DEVICE_OST`` does: ``detach-device`` fails with libvirt's words and
    the DIMM stays; ``virsh shutdown`` presses the power button, the guest
    (``powerbutton``) powers off, pyqom stops (``-no-shutdown``) and libvirt
    ends the domain (``on_poweroff`` destroy)."""
    domain, console = _domain_files(tmp_path, cmdline="ost-fail powerbutton")
    libvirtd.virsh("define", str(domain))
    try:
        libvirtd.virsh("start", DOMAIN)
        _until(lambda: console.exists() and b"ready\n" in console.read_bytes(), "the guest")
        libvirtd.virsh("attach-device", DOMAIN, str(tmp_path / "dimm.xml"), "--live")
        (tmp_path / "live-dimm.xml").write_text(_dimm(libvirtd))
        refused = subprocess.run(["virsh", "-c", libvirtd.uri, "detach-device", DOMAIN,
                                  str(tmp_path / "live-dimm.xml"), "--live"],
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1
        assert "unplug of device was rejected by the guest" in refused.stderr
        assert b"ost slot 0 event 0x103 status 0x1\n" in console.read_bytes()
        assert "<alias name='dimm0'/>" in _dimm(libvirtd)
        libvirtd.virsh("shutdown", DOMAIN)
        _until(lambda: libvirtd.virsh("domstate", DOMAIN, "--reason").strip()
               == "shut off (shutdown)", "the guest to power off")
        assert console.read_bytes().endswith(b"power button\npoweroff\n")
    finally:
        libvirtd.virsh("destroy", DOMAIN, check=False)
        libvirtd.virsh("undefine", DOMAIN)


#: the README's second NUMA cell (its "two cells" variant)
SECOND_CELL = "      <cell id='1' cpus='1' memory='128' unit='MiB'/>\n"


@pytest.mark.parametrize("cells", [1, 2], ids=["one-cell", "two-cells"])
def test_define_start_attach_detach_destroy_undefine(libvirtd: Libvirtd, tmp_path: Path,
                                                      cells: int) -> None:
    """With two cells (two vCPUs, 256 MiB) the DIMM goes on node 1."""
    domain, console = _domain_files(tmp_path)
    xml = domain.read_text()
    dimm_xml = (tmp_path / "dimm.xml").read_text()
    node = cells - 1
    if cells == 2:
        cell = "      <cell id='0' cpus='0' memory='128' unit='MiB'/>\n"
        assert cell in xml and SECOND_CELL in README_TEXT
        xml = (xml.replace(cell, cell + SECOND_CELL).replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>")
               .replace("<memory unit='MiB'>128</memory>", "<memory unit='MiB'>256</memory>"))
        dimm_xml = dimm_xml.replace("<node>0</node>", "<node>1</node>")
    (tmp_path / "domain.xml").write_text(xml)
    (tmp_path / "dimm.xml").write_text(dimm_xml)

    assert f"Domain '{DOMAIN}' defined" in libvirtd.virsh("define", str(tmp_path / "domain.xml"))
    libvirtd.virsh("start", DOMAIN)
    assert libvirtd.virsh("domstate", DOMAIN).strip() == "running"
    _until(lambda: console.exists() and b"ready\n" in console.read_bytes(), "the guest")

    libvirtd.virsh("attach-device", DOMAIN, str(tmp_path / "dimm.xml"), "--live")
    dimm = _dimm(libvirtd)
    assert "<size unit='KiB'>131072</size>" in dimm
    assert f"<node>{node}</node>" in dimm
    assert "<alias name='dimm0'/>" in dimm
    assert "<address type='dimm' slot='0' base='0x100000000'/>" in dimm
    _until(lambda: b"online slot 0\n" in console.read_bytes(), "the guest to online it")

    (tmp_path / "live-dimm.xml").write_text(dimm)
    out = libvirtd.virsh("detach-device", DOMAIN, str(tmp_path / "live-dimm.xml"), "--live")
    assert "Device detached successfully" in out
    assert b"ejected slot 0\n" in console.read_bytes()
    assert "<memory model='dimm'>" not in libvirtd.virsh("dumpxml", DOMAIN)

    libvirtd.virsh("destroy", DOMAIN)
    assert libvirtd.virsh("domstate", DOMAIN).strip() == "shut off"
    libvirtd.virsh("undefine", DOMAIN)
    assert DOMAIN not in libvirtd.virsh("list", "--all", "--name")
