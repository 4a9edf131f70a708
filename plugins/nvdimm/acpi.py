"""What the guest's firmware tables say of NVDIMMs, and the ``_DSM`` protocol behind them.

QEMU 7.2's ``hw/acpi/nvdimm.c``, as pure functions over plain values:

* :func:`fit` - the NFIT's device structures (one SPA range, memory-device map
  and control region per NVDIMM, then the platform capabilities of
  ``nvdimm-persistence``); the same bytes are the NFIT's body and the FIT
  buffer the ``_FIT`` method reads;
* :func:`ssdt_aml` - the SSDT (OEM table id ``NVDIMM``) with ``\\_SB.NVDR``,
  its ``NCAL`` helper, ``_DSM``, ``RFIT``/``_FIT`` and an ``NVxx`` device per
  slot with ``_LSI``/``_LSR``/``_LSW``/``_DSM``, then ``MEMA``, the address of
  the DSM page;
* :func:`dsm` - what the platform writes back into the DSM page when the
  guest writes the page's address to port 0x0A18.

Nothing here knows a device object: :class:`NvdimmInfo` is what a structure
needs of one NVDIMM, and :class:`LabelArea` is how :func:`dsm` reaches its
label.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Protocol

import attrs

from plugins import aml
from plugins.nvdimm import DSM_IO_BASE, DSM_IO_LEN, DSM_MEMORY_SIZE
from qom.reprs import FieldsValue

#: NFIT structure types
SPA_RANGE: Final = 0
MEMORY_DEVICE_MAP: Final = 1
CONTROL_REGION: Final = 4
PLATFORM_CAPABILITIES: Final = 7
#: the persistent-memory SPA range type
PMEM_REGION_UUID: Final = "66f0d379-b4f3-4074-ac43-0d3318b78cdb"
#: ``EFI_MEMORY_WB | EFI_MEMORY_NV``
PMEM_ATTRIBUTES: Final = 0x8 | 0x8000
#: the memory-device map flag of an ``unarmed=on`` NVDIMM
NOT_ARMED: Final = 1 << 3

#: DSM function results
STATUS_SUCCESS: Final = 0
STATUS_UNSUPPORTED: Final = 1
STATUS_NO_MEMORY_DEVICE: Final = 2
STATUS_INVALID: Final = 3
STATUS_FIT_CHANGED: Final = 0x100
#: the handle of QEMU's own root functions (Read FIT)
RESERVED_ROOT_HANDLE: Final = 0x10000

ROOT_UUID: Final = "2F10E7A4-9E91-11E4-89D3-123B93F75CBA"
RESERVED_UUID: Final = "648B9CF2-CDA1-4312-8AD9-49C4AF32BD62"
DEVICE_UUID: Final = "4309AC30-0D11-11E4-9191-0800200C9A66"

#: the DSM page as input: handle, revision, function, then Arg3's buffer
_IN_HEADER: Final = 12
#: the DSM page as output: the length of what follows (and itself), then the data
_OUT_HEADER: Final = 4
#: the largest label transfer (QEMU's ``nvdimm_get_max_xfer_label_size``):
#: what fits in a Set Label Data input after its offset and length
MAX_LABEL_TRANSFER: Final = min(DSM_MEMORY_SIZE - 8, DSM_MEMORY_SIZE - _IN_HEADER - 8)


def slot_handle(slot: int) -> int:
    """The NFIT device handle of a slot (``_ADR`` of ``NVxx``); 0 is the root."""
    return slot + 1


def _spa_index(slot: int) -> int:
    return (slot + 1) << 1


# -- the NFIT ------------------------------------------------------------------


@attrs.frozen(repr=False, eq=False)
class NvdimmInfo(FieldsValue):
    """What the NFIT says of one NVDIMM."""

    slot: int
    addr: int
    #: bytes of persistent memory the guest sees (the backend less the label)
    size: int
    node: int
    unarmed: bool


def _uuid_bytes(text: str) -> bytes:
    return aml.to_uuid(text)[-16:]


def fit(devices: Sequence[NvdimmInfo], persistence: int = 0) -> bytes:
    """The NFIT structures of ``devices`` (in their order), then the platform
    capabilities when ``persistence`` (``nvdimm-persistence``: 3 cpu, 2 mem-ctrl)."""
    out = bytearray()
    for dev in devices:
        spa = _spa_index(dev.slot)
        out += struct.pack("<HHHHII16sQQQ", SPA_RANGE, 56, spa,
                           1 | 2,  # control region for hot add, proximity valid
                           0, dev.node, _uuid_bytes(PMEM_REGION_UUID), dev.addr, dev.size,
                           PMEM_ATTRIBUTES)
        out += struct.pack("<HHIHHHHQQQHHHH", MEMORY_DEVICE_MAP, 48, slot_handle(dev.slot),
                           0, 0, spa, spa + 1, dev.size, 0, 0, 0, 1,
                           NOT_ARMED if dev.unarmed else 0, 0)
        out += struct.pack("<HHHHHHHHH6sIHHQQQQQH6s", CONTROL_REGION, 80, spa + 1,
                           0x8086, 1, 1, 0, 0, 0, bytes(6), 0x123456 + dev.slot,
                           0x301,  # byte-addressable, no energy backed
                           0, 0, 0, 0, 0, 0, 0, bytes(6))
    if persistence:
        out += struct.pack("<HHB3sI4s", PLATFORM_CAPABILITIES, 16, persistence.bit_length() - 1,
                           bytes(3), persistence, bytes(4))
    return bytes(out)


def nfit_body(structures: bytes) -> bytes:
    """The NFIT after its header: 4 reserved bytes, then the structures."""
    return bytes(4) + structures


# -- the SSDT --------------------------------------------------------------------


def _dword(value: int) -> bytes:
    return bytes([aml.DWORD_PREFIX]) + value.to_bytes(4, "little")


def _common_dsm() -> bytes:
    """``NCAL (uuid, revision, function, arg3, handle)``: every ``_DSM`` of the
    root and the NVDIMMs, through the DSM page and port."""
    uuid, revision, function, package, handle = (aml.arg(i) for i in range(5))
    page, result = aml.local(6), aml.local(7)
    expected, out_size, offset = aml.local(0), aml.local(1), aml.local(2)
    in_fields = (aml.named_field("HDLE", 32), aml.named_field("REVS", 32),
                 aml.named_field("FUNC", 32),
                 aml.named_field("FARG", (DSM_MEMORY_SIZE - _IN_HEADER) * 8))
    out_fields = (aml.named_field("RLEN", 32),
                  aml.named_field("ODAT", (DSM_MEMORY_SIZE - _OUT_HEADER) * 8))
    return aml.method(
        "NCAL", 5,
        aml.store("MEMA", page),
        aml.operation_region("NPIO", aml.SYSTEM_IO, DSM_IO_BASE, DSM_IO_LEN),
        aml.operation_region("NRAM", aml.SYSTEM_MEMORY, page, DSM_MEMORY_SIZE),
        aml.field("NPIO", aml.DWORD_ACC, aml.NO_LOCK, aml.PRESERVE,
                  aml.named_field("NTFI", DSM_IO_LEN * 8)),
        aml.field("NRAM", aml.DWORD_ACC, aml.NO_LOCK, aml.PRESERVE, *in_fields),
        aml.field("NRAM", aml.DWORD_ACC, aml.NO_LOCK, aml.PRESERVE, *out_fields),
        aml.if_(aml.lequal(handle, 0), aml.store(aml.to_uuid(ROOT_UUID), expected)),
        aml.else_(
            aml.if_(aml.lequal(handle, RESERVED_ROOT_HANDLE),
                    aml.store(aml.to_uuid(RESERVED_UUID), expected)),
            aml.else_(aml.store(aml.to_uuid(DEVICE_UUID), expected))),
        aml.if_(aml.lor(aml.lequal(page, 0), aml.lnot(aml.lequal(uuid, expected))),
                aml.if_(aml.lequal(function, 0), aml.return_(aml.buffer(b"\x00"))),
                aml.return_(aml.buffer(bytes([STATUS_UNSUPPORTED])))),
        aml.store(handle, "HDLE"),
        aml.store(revision, "REVS"),
        aml.store(function, "FUNC"),
        aml.if_(aml.land(aml.lequal(aml.object_type(package), 4),
                         aml.lequal(aml.size_of(package), 1)),
                aml.store(aml.index(package, 0), aml.local(2)),
                aml.store(aml.deref_of(aml.local(2)), aml.local(3)),
                aml.store(aml.local(3), "FARG")),
        aml.store(page, "NTFI"),
        aml.subtract("RLEN", 4, out_size),
        # A result shorter than an Integer would become one with CreateField:
        # copy it byte by byte instead.
        aml.if_(aml.lless(out_size, 8),
                aml.store(0, offset),
                aml.name("TBUF", aml.buffer(bytes(1))),
                aml.store(aml.buffer(b""), result),
                aml.while_(aml.lless(offset, out_size),
                           aml.store(aml.deref_of(aml.index("ODAT", offset)),
                                     aml.index("TBUF", 0)),
                           aml.concatenate(result, "TBUF", result),
                           aml.increment(offset)),
                aml.return_(result)),
        aml.store(aml.shift_left(out_size, 3), out_size),
        aml.create_field("ODAT", 0, out_size, "OBUF"),
        aml.return_("OBUF"),
        serialized=True)


def _device_dsm(handle: int) -> bytes:
    return aml.method("_DSM", 4, aml.return_(aml.call(
        "NCAL", aml.arg(0), aml.arg(1), aml.arg(2), aml.arg(3), handle)))


def _fit_methods() -> bytes:
    """``RSTA``, ``RFIT (offset)`` and ``_FIT``: the FIT read in pieces through
    QEMU's reserved root function 1, restarted when it changed meanwhile."""
    buf, buf_size, whole, offset = aml.local(0), aml.local(1), aml.local(2), aml.local(3)
    read_fit = aml.method(
        "RFIT", 1,
        aml.name("OFST", 0),
        aml.store(aml.arg(0), "OFST"),
        aml.store(aml.call("NCAL", aml.to_uuid(RESERVED_UUID), 1, 1, aml.package("OFST"),
                           RESERVED_ROOT_HANDLE), buf),
        aml.create_dword_field(buf, 0, "STAU"),
        aml.store("STAU", "RSTA"),
        aml.if_(aml.lnot(aml.lequal(STATUS_SUCCESS, "STAU")), aml.return_(aml.buffer(b""))),
        aml.store(aml.size_of(buf), buf_size),
        aml.subtract(buf_size, 4, buf_size),
        aml.if_(aml.lequal(buf_size, 0), aml.return_(aml.buffer(b""))),
        aml.create_field(buf, 32, aml.shift_left(buf_size, 3), "BUFF"),
        aml.return_("BUFF"),
        serialized=True)
    get_fit = aml.method(
        "_FIT", 0,
        aml.store(aml.buffer(b""), whole),
        aml.store(0, offset),
        aml.while_(1,
                   aml.store(aml.call("RFIT", offset), buf),
                   aml.store(aml.size_of(buf), buf_size),
                   aml.if_(aml.lequal("RSTA", STATUS_FIT_CHANGED),
                           aml.store(aml.buffer(b""), whole),
                           aml.store(0, offset)),
                   aml.else_(aml.if_(aml.lequal(buf_size, 0), aml.return_(whole)),
                             aml.add(offset, buf_size, offset),
                             aml.concatenate(whole, buf, whole))),
        serialized=True)
    return aml.name("RSTA", 0) + read_fit + get_fit


def _slot_device(slot: int) -> bytes:
    """``NVxx``: ``_ADR`` (its NFIT handle), the ACPI 6.4 label methods and ``_DSM``."""
    handle = slot_handle(slot)
    uuid = aml.to_uuid(DEVICE_UUID)
    label_info = aml.method(
        "_LSI", 0,
        aml.store(aml.call("NCAL", uuid, 1, 4, 0, handle), aml.local(0)),
        aml.create_dword_field(aml.local(0), 0, "STTS"),
        aml.create_dword_field(aml.local(0), 4, "SLSA"),
        aml.create_dword_field(aml.local(0), 8, "MAXT"),
        aml.store(aml.package("STTS", "SLSA", "MAXT"), aml.local(1)),
        aml.return_(aml.local(1)),
        serialized=True)
    label_read = aml.method(
        "_LSR", 2,
        aml.name("INPT", aml.buffer(bytes(8))),
        aml.create_dword_field("INPT", 0, "OFST"),
        aml.create_dword_field("INPT", 4, "LEN"),
        aml.store(aml.arg(0), "OFST"),
        aml.store(aml.arg(1), "LEN"),
        aml.store(aml.package("INPT"), aml.local(0)),
        aml.store(aml.call("NCAL", uuid, 1, 5, aml.local(0), handle), aml.local(3)),
        aml.create_dword_field(aml.local(3), 0, "STTS"),
        aml.create_field(aml.local(3), 32, aml.shift_left("LEN", 3), "LDAT"),
        aml.name("LSA", aml.buffer(b"")),
        aml.to_buffer("LDAT", "LSA"),
        aml.store(aml.package("STTS", "LSA"), aml.local(1)),
        aml.return_(aml.local(1)),
        serialized=True)
    label_write = aml.method(
        "_LSW", 3,
        aml.store(aml.arg(2), aml.local(2)),
        aml.name("INPT", aml.buffer(bytes(8))),
        aml.create_dword_field("INPT", 0, "OFST"),
        aml.create_dword_field("INPT", 4, "TLEN"),
        aml.store(aml.arg(0), "OFST"),
        aml.store(aml.arg(1), "TLEN"),
        aml.concatenate("INPT", aml.local(2), "INPT"),
        aml.store(aml.package("INPT"), aml.local(0)),
        aml.store(aml.call("NCAL", uuid, 1, 6, aml.local(0), handle), aml.local(3)),
        aml.create_dword_field(aml.local(3), 0, "STTS"),
        aml.return_("STTS"),
        serialized=True)
    return aml.device(f"NV{slot:02X}", aml.name("_ADR", handle), label_info, label_read,
                      label_write, _device_dsm(handle))


def ssdt_aml(ram_slots: int, dsm_page: int) -> bytes:
    """The NVDIMM SSDT's AML: ``\\_SB.NVDR`` with ``ram_slots`` NVDIMM devices,
    then ``Name (MEMA, dsm_page)`` (what QEMU's table loader patches in)."""
    root = aml.device("NVDR", aml.name("_HID", aml.string("ACPI0012")), _common_dsm(),
                      _device_dsm(0), _fit_methods(),
                      *(_slot_device(slot) for slot in range(ram_slots)))
    return aml.definition_block(aml.scope("\\_SB", root),
                                aml.name("MEMA", _dword(dsm_page)))


def gpe_handler_aml() -> bytes:
    """``\\_GPE._E04``: an NVDIMM was hot-plugged, the root re-reads ``_FIT``."""
    return aml.scope("\\_GPE", aml.method("_E04", 0, aml.notify("\\_SB.NVDR", 0x80)))


# -- the DSM protocol -------------------------------------------------------------------


class LabelArea(Protocol):
    """An NVDIMM's label area, as the DSM functions reach it."""

    @property
    def label_size(self) -> int: ...

    def read_label(self, offset: int, length: int) -> bytes: ...

    def write_label(self, offset: int, data: bytes) -> bool:
        """Store ``data``; ``False`` if the label cannot be written (a read-only
        backend, which QEMU 7.2 would crash on)."""
        ...


@attrs.define(repr=False, eq=False)
class FitBuffer:
    """The FIT the guest reads through ``_FIT``: rebuilt on every NVDIMM plug,
    marked dirty so a read in progress starts again."""

    data: bytes = b""
    dirty: bool = False


def _result(data: bytes) -> bytes:
    return struct.pack("<I", _OUT_HEADER + len(data)) + data


def _status(status: int) -> bytes:
    return _result(struct.pack("<I", status))


def _read_fit(buffer: FitBuffer, arguments: bytes) -> bytes:
    (offset,) = struct.unpack_from("<I", arguments)
    if offset > len(buffer.data):
        return _status(STATUS_INVALID)
    if not offset:
        buffer.dirty = False
    elif buffer.dirty:
        return _status(STATUS_FIT_CHANGED)
    piece = buffer.data[offset:offset + DSM_MEMORY_SIZE - 8]
    return _result(struct.pack("<I", STATUS_SUCCESS) + piece)


def _label_check(label: LabelArea, offset: int, length: int) -> int:
    if offset + length > 0xFFFFFFFF or label.label_size < offset + length:
        return STATUS_INVALID
    if length > MAX_LABEL_TRANSFER:
        return STATUS_INVALID
    return STATUS_SUCCESS


def _device_function(label: LabelArea | None, function: int, arguments: bytes) -> bytes:
    if function == 0:
        supported = 0x1 | 1 << 4 | 1 << 5 | 1 << 6 if label is not None and label.label_size else 0
        return _result(struct.pack("<I", supported))
    if label is None:
        return _status(STATUS_NO_MEMORY_DEVICE)
    if not label.label_size or function not in (4, 5, 6):
        return _status(STATUS_UNSUPPORTED)
    if function == 4:
        return _result(struct.pack("<III", STATUS_SUCCESS, label.label_size,
                                   MAX_LABEL_TRANSFER))
    offset, length = struct.unpack_from("<II", arguments)
    status = _label_check(label, offset, length)
    if status != STATUS_SUCCESS:
        return _status(status)
    if function == 5:
        return _result(struct.pack("<I", STATUS_SUCCESS) + label.read_label(offset, length))
    if not label.write_label(offset, arguments[8:8 + length]):
        return _status(STATUS_INVALID)
    return _status(STATUS_SUCCESS)


def dsm(page: bytes, fit_buffer: FitBuffer,
        labels: Mapping[int, LabelArea] | Callable[[int], LabelArea | None]) -> bytes:
    """What QEMU writes into the DSM page for the request ``page`` holds
    (``nvdimm_dsm_write``): its bytes, from the page's start.

    :param page: the DSM page as the guest left it (4096 bytes).
    :param fit_buffer: the FIT; a Read FIT from offset 0 clears its dirty mark.
    :param labels: the label area of the NVDIMM with each handle.
    """
    handle, revision, function = struct.unpack_from("<III", page)
    arguments = bytes(page[_IN_HEADER:DSM_MEMORY_SIZE])
    if revision != 1:
        return _status(STATUS_UNSUPPORTED)
    if handle == RESERVED_ROOT_HANDLE:
        if function == 0:
            return _result(struct.pack("<I", 0x1 | 1 << 1))
        if function == 1:
            return _read_fit(fit_buffer, arguments)
        return _status(STATUS_UNSUPPORTED)
    if handle == 0:
        return _result(struct.pack("<I", 0)) if function == 0 else _status(STATUS_UNSUPPORTED)
    label = labels(handle) if callable(labels) else labels.get(handle)
    return _device_function(label, function, arguments)
