"""The options libvirt passes that QEMU 7.2 takes and pyqom cannot honour:
refused in one line, in words, exit 1 (tests/conformance/test_libvirt_vs_qemu.py
checks the ones pyqom takes against QEMU).  Also ``-pidfile`` and the none
machine's refusals, and each option ``query-command-line-options`` lists is
one pyqom's parser takes."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plugins.monitor.probe import COMMAND_LINE_OPTIONS
from pyqom.cli import main
from pyqom.command_line import parse_command_line
from pyqom.daemon import PidFileError, write_pidfile
from pyqom.vm import VM

BASE = ["-machine", "pc", "-display", "none", "-nodefaults", "-m", "128M", "-S"]


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("args", "stderr"), [
    (["-sandbox", "on,obsolete=deny"],
     "-sandbox on,obsolete=deny: -sandbox support is not enabled in this QEMU binary\n"),
    (["-audiodev", "pa,id=a1"], "-audiodev pa,id=a1: pyqom does not support the audio "
     "driver 'pa' (only none)\n"),
    (["-audiodev", "none"], "-audiodev none: Parameter 'id' is missing\n"),
    (["-rtc", "base=localtime"], "-rtc base=localtime: pyqom does not support -rtc "
     "base=localtime (it has no RTC)\n"),
    (["-rtc", "driftfix=slew"], "-rtc driftfix=slew: pyqom does not support -rtc driftfix "
     "(it has no RTC)\n"),
    (["-boot", "order=c"], "pyqom does not support -boot order (it has no firmware)\n"),
    (["-msg", "guest-name=on"], "-msg guest-name=on: pyqom does not support -msg "
     "guest-name=on\n"),
    (["-machine", "pc,usb=on"], "pyqom does not support -machine usb=on\n"),
    (["-machine", "pc,dump-guest-core=on"], "pyqom does not support -machine dump-guest-core=on\n"),
    (["-chardev", "socket,id=c,path=/tmp/x,server=on,wait=off", "-mon", "chardev=c,pretty=on"],
     "-mon chardev=c,pretty=on: pyqom does not support pretty=on\n"),
    (["-chardev", "file,id=c,path=/dev/null", "-mon", "chardev=c"],
     "-mon chardev=c: pyqom does not support a monitor on a file chardev\n"),
])
def test_what_pyqom_cannot_honour_is_refused(args: list[str], stderr: str) -> None:
    assert run(*BASE, *args) == (1, "", f"pyqom: {stderr}")


def test_nographic_needs_nodefaults() -> None:
    """With the defaults QEMU puts a serial port on stdio: pyqom has none."""
    status, _, err = run("-machine", "pc", "-nographic", "-S")
    assert (status, err) == (1, "pyqom: -nographic: pyqom has no serial console for "
                                "-nographic; use -nodefaults or -display none\n")


@pytest.mark.parametrize(("args", "stderr"), [
    (["-m", "1G"], "pyqom's none machine has no RAM: leave out -m\n"),
    (["-smp", "2"], "pyqom's none machine takes no -smp\n"),
    (["-kernel", "/dev/null"], "pyqom's none machine takes no -kernel\n"),
])
def test_the_none_machine_has_nothing_to_put_things_on(args: list[str], stderr: str) -> None:
    assert run("-machine", "none", "-display", "none", "-nodefaults", "-S", *args) == (
        1, "", f"pyqom: {stderr}")


def test_the_pidfile_is_locked_and_holds_the_pid(tmp_path: Path) -> None:
    """A second holder of the same file fails with QEMU's reason, even in another
    process; the file has this process's pid."""
    path = tmp_path / "run.pid"
    code = ("import sys; from pyqom.daemon import write_pidfile; write_pidfile(sys.argv[1]); "
            "print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        assert path.read_text() == f"{holder.pid}\n"
        with pytest.raises(PidFileError) as refused:
            write_pidfile(str(path))
        assert str(refused.value) == "Cannot lock pid file: Resource temporarily unavailable"
    finally:
        holder.communicate("")
    assert not path.exists()        # removed as the holder exited


def test_a_pidfile_that_cannot_be_created(tmp_path: Path) -> None:
    with pytest.raises(PidFileError, match=r"^Could not create '.*/no/x\.pid': No such file"):
        write_pidfile(str(tmp_path / "no" / "x.pid"))


#: a valid value for each parameter ``query-command-line-options`` lists
SAMPLES = {
    ("machine", "type"): ["-machine", "type=pc"], ("machine", "usb"): ["-machine", "pc,usb=off"],
    ("machine", "dump-guest-core"): ["-machine", "pc,dump-guest-core=off"],
    ("machine", "accel"): ["-machine", "pc,accel=tcg"],
    ("name", "guest"): ["-name", "guest=g"], ("msg", "timestamp"): ["-msg", "timestamp=on"],
    ("overcommit", "cpu-pm"): ["-overcommit", "cpu-pm=off"],
    ("overcommit", "mem-lock"): ["-overcommit", "mem-lock=off"],
    ("boot-opts", "strict"): ["-boot", "strict=on"],
    ("memory", "size"): ["-m", "size=256M"], ("memory", "slots"): ["-m", "1G,slots=2,maxmem=2G"],
    ("memory", "maxmem"): ["-m", "1G,maxmem=2G"],
    ("mon", "chardev"): ["-chardev", "socket,id=c,path=/tmp/m,server=on,wait=off",
                         "-mon", "chardev=c"],
    ("mon", "mode"): ["-chardev", "socket,id=c,path=/tmp/m,server=on,wait=off",
                      "-mon", "chardev=c,mode=control"],
    ("rtc", "clock"): ["-rtc", "clock=host"], ("rtc", "base"): ["-rtc", "base=utc"],
    ("chardev", "server"): ["-chardev", "socket,id=c,path=/tmp/m,server=on,wait=off"],
    ("chardev", "wait"): ["-chardev", "socket,id=c,path=/tmp/m,server=on,wait=off"],
    ("chardev", "fd"): ["-chardev", "socket,id=c,fd=3,server=on,wait=off"],
    ("chardev", "port"): ["-chardev", "socket,id=c,host=localhost,port=4444"],
    ("chardev", "host"): ["-chardev", "socket,id=c,host=localhost,port=4444"],
    ("chardev", "path"): ["-chardev", "file,id=c,path=/dev/null"],
    ("chardev", "backend"): ["-chardev", "backend=null,id=c"],
}
SAMPLES.update({("smp-opts", key): ["-smp", f"{key}=1"] for key in
                ("maxcpus", "threads", "cores", "clusters", "dies", "sockets", "cpus")})


def test_every_listed_parameter_is_taken() -> None:
    """``query-command-line-options`` says nothing pyqom's parser refuses."""
    listed = {(option, name) for option, parameters in COMMAND_LINE_OPTIONS.items()
              for name, _ in parameters}
    assert listed == set(SAMPLES)
    vm = VM.empty()
    try:
        for args in SAMPLES.values():
            parse_command_line([*args, "-display", "none"], lambda text: None,
                               vm.tree.registry)
    finally:
        vm.close()


def test_no_shutdown_and_uuid_are_read() -> None:
    vm = VM.empty()
    try:
        line = parse_command_line(["-no-shutdown", "-uuid",
                                   "2AC93E71-214D-4E90-B339-14139FBF0DB1", "-daemonize",
                                   "-pidfile", "/tmp/p"], lambda text: None, vm.tree.registry)
    finally:
        vm.close()
    assert (line.no_shutdown, line.uuid, line.daemonize, line.pidfile) == (
        True, "2ac93e71-214d-4e90-b339-14139fbf0db1", True, "/tmp/p")


def test_a_daemon_gives_back_the_terminal_and_says_where_its_pid_is(tmp_path: Path) -> None:
    """``-daemonize``: the parent returns at once with 0, nothing on its stdout or
    stderr, the daemon's pid in the file (it has left the parent's session)."""
    sock = tmp_path / "qmp.sock"
    done = subprocess.run([sys.executable, "-m", "pyqom", "-machine", "none", "-S",
                           "-nodefaults", "-display", "none", "-qmp",
                           f"unix:{sock},server=on,wait=off", "-pidfile",
                           str(tmp_path / "p.pid"), "-daemonize"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    pid = int((tmp_path / "p.pid").read_text())
    try:
        assert os.getsid(pid) != os.getsid(0)
    finally:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(sock))
            client.sendall(b'{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n')
            while client.recv(4096):
                pass
    deadline = time.monotonic() + 20
    while (tmp_path / "p.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not (tmp_path / "p.pid").exists()     # removed as the daemon ended
