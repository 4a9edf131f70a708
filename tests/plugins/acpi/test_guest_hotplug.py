"""A guest OS's side of memory hotplug, as x86 code in Unicorn: it scans the slots
after a hot-add (base, length, clear insert, _OST) and ejects after device_del,
while a QMP client watches the events."""

from __future__ import annotations

import json

from guest_asm import assemble

from plugins.monitor import QmpSession, VmControl
from pyqom.vm import VM

#: What \_SB.MHPC.MSCN and the OS do, slot by slot, for 3 slots (GNU as, Intel syntax):
#: an inserted DIMM's base and length are stored at 0x9000 + 16 * slot.
SCAN_SLOTS = r"""
    .intel_syntax noprefix
    .code64
    xor ebx, ebx                  # slot number
scan:
    mov dx, 0xa00
    mov eax, ebx
    out dx, eax                   # MSEL: select the slot
    mov dx, 0xa14
    in al, dx                     # MINS/MRMV status bits
    test al, 2
    jz check_remove
    mov dx, 0xa00
    in eax, dx                    # MRBL
    mov r8d, eax
    mov dx, 0xa04
    in eax, dx                    # MRBH
    shl rax, 32
    or r8, rax
    mov dx, 0xa08
    in eax, dx                    # MRLL
    mov r9d, eax
    mov dx, 0xa0c
    in eax, dx                    # MRLH
    shl rax, 32
    or r9, rax
    mov rdi, rbx
    shl rdi, 4
    add rdi, 0x9000
    mov [rdi], r8
    mov [rdi + 8], r9
    mov dx, 0xa14
    mov al, 2
    out dx, al                    # clear the insert event
    mov dx, 0xa04
    mov eax, 1
    out dx, eax                   # _OST: event 1 (device check)
    mov dx, 0xa08
    xor eax, eax
    out dx, eax                   # _OST: status 0 (success)
    jmp next
check_remove:
    test al, 4
    jz next
    mov dx, 0xa14
    mov al, 4
    out dx, al                    # clear the remove event
    mov dx, 0xa04
    mov eax, 3
    out dx, eax                   # _OST: event 3 (eject request)
    mov dx, 0xa08
    mov eax, 0x80
    out dx, eax                   # _OST: status 0x80 (in progress)
    mov dx, 0xa14
    mov al, 8
    out dx, al                    # _EJ0: eject
next:
    inc ebx
    cmp ebx, 3
    jb scan
    mov dx, 0xafe0
    mov ax, 8
    out dx, ax                    # acknowledge GPE0.3
    hlt
"""


class Client:
    """A QMP client on the VM's monitor, fed in-process; keeps every line it received."""

    def __init__(self, vm: VM) -> None:
        self.control = VmControl(vm, paused=False)
        self.lines: list[dict] = []
        self.session = QmpSession(self.control,
                                  lambda data: self.lines.extend(
                                      json.loads(line) for line in data.decode().splitlines()))
        self.session.start()
        self.execute("qmp_capabilities")

    def execute(self, command: str, arguments: dict | None = None) -> dict:
        request = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.session.feed(json.dumps(request).encode() + b"\n")
        return self.lines[-1]

    def events(self) -> list[tuple[str, dict]]:
        return [(line["event"], line["data"]) for line in self.lines if "event" in line]


def test_guest_scan_ost_and_eject_seen_on_qmp(tmp_path):
    code = assemble(SCAN_SLOTS, tmp_path)
    with VM("1G", slots=3, maxmem="4G", autoload=False) as vm:
        client = Client(vm)
        try:
            client.execute("object-add", {"qom-type": "memory-backend-ram", "id": "mem1",
                                          "size": 1 << 30})
            assert client.execute("device_add", {"driver": "pc-dimm", "id": "dimm1",
                                                 "memdev": "mem1"}) == {"return": {}}
            vm.run(code, load_at=0x1000)
            assert vm.read(0x9000, 16) == (0x100000000).to_bytes(8, "little") + \
                (1 << 30).to_bytes(8, "little")
            assert client.events() == [("ACPI_DEVICE_OST", {"info": {
                "device": "dimm1", "slot": "0", "slot-type": "DIMM", "source": 1, "status": 0}})]
            ospm = client.execute("query-acpi-ospm-status")["return"]
            assert ospm[0] == {"device": "dimm1", "slot": "0", "slot-type": "DIMM",
                               "source": 1, "status": 0}

            assert client.execute("device_del", {"id": "dimm1"}) == {"return": {}}
            assert len(client.execute("query-memory-devices")["return"]) == 1
            vm.run(code, load_at=0x1000)
            assert client.events()[1:] == [
                ("ACPI_DEVICE_OST", {"info": {"device": "dimm1", "slot": "0",
                                              "slot-type": "DIMM", "source": 3,
                                              "status": 128}}),
                ("DEVICE_DELETED", {"device": "dimm1", "path": "/machine/peripheral/dimm1"}),
            ]
            assert client.execute("query-memory-devices") == {"return": []}
            assert client.execute("object-del", {"id": "mem1"}) == {"return": {}}
            # the slot keeps its last _OST values, without a device
            assert client.execute("query-acpi-ospm-status")["return"][0] == {
                "slot": "0", "slot-type": "DIMM", "source": 3, "status": 128}
        finally:
            client.session.close()
            client.control.close()
