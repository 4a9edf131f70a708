"""A pure-Python AML encoder with QEMU 7.2's encoding choices.

Every function returns the encoded term as ``bytes``, so AML is built by
nesting calls, much as ``hw/acpi/aml-build.c`` nests ``Aml`` blocks::

    device("MP00",
           name("_UID", string("0x00")),
           method("_STA", 0, return_(call("MRST", "_UID"))))

Where a function takes a *term* (:data:`Term`), three forms are accepted, the
short-hands QEMU's ``aml_*`` calls correspond to:

* ``int``: an integer constant, encoded as :func:`integer` does;
* ``str``: a name (``"MSEL"``, ``"\\\\_SB.PCI0"``, ``"^FOO"``), encoded as
  :func:`name_string` does; strings as data need :func:`string`;
* ``bytes``: an already encoded term (``arg(0)``, ``lequal(...)``).

Encodings follow the ACPI 6.x "ACPI Machine Language Specification" chapter;
where AML offers a choice (integer width, PkgLength width) the choice is
QEMU's, so tables compare byte for byte with QEMU 7.2's.
"""

from __future__ import annotations

import struct
from typing import Final

Term = int | str | bytes

# -- opcodes (ACPI spec 20.3) -------------------------------------------------

ZERO_OP: Final = 0x00
ONE_OP: Final = 0x01
ONES_OP: Final = 0xFF
BYTE_PREFIX: Final = 0x0A
WORD_PREFIX: Final = 0x0B
DWORD_PREFIX: Final = 0x0C
STRING_PREFIX: Final = 0x0D
QWORD_PREFIX: Final = 0x0E
NAME_OP: Final = 0x08
SCOPE_OP: Final = 0x10
BUFFER_OP: Final = 0x11
PACKAGE_OP: Final = 0x12
METHOD_OP: Final = 0x14
DUAL_NAME_PREFIX: Final = 0x2E
MULTI_NAME_PREFIX: Final = 0x2F
EXT_OP_PREFIX: Final = 0x5B
ROOT_CHAR: Final = 0x5C
PARENT_PREFIX_CHAR: Final = 0x5E
LOCAL0_OP: Final = 0x60
ARG0_OP: Final = 0x68
STORE_OP: Final = 0x70
ADD_OP: Final = 0x72
INCREMENT_OP: Final = 0x75
DECREMENT_OP: Final = 0x76
SUBTRACT_OP: Final = 0x74
SHIFT_LEFT_OP: Final = 0x79
SHIFT_RIGHT_OP: Final = 0x7A
AND_OP: Final = 0x7B
OR_OP: Final = 0x7D
NOTIFY_OP: Final = 0x86
SIZE_OF_OP: Final = 0x87
CREATE_DWORD_FIELD_OP: Final = 0x8A
CREATE_QWORD_FIELD_OP: Final = 0x8F
LAND_OP: Final = 0x90
LOR_OP: Final = 0x91
LNOT_OP: Final = 0x92
LEQUAL_OP: Final = 0x93
LGREATER_OP: Final = 0x94
LLESS_OP: Final = 0x95
TO_INTEGER_OP: Final = 0x99
TO_BUFFER_OP: Final = 0x96
CONCAT_OP: Final = 0x73
DEREF_OF_OP: Final = 0x83
INDEX_OP: Final = 0x88
OBJECT_TYPE_OP: Final = 0x8E
IF_OP: Final = 0xA0
ELSE_OP: Final = 0xA1
WHILE_OP: Final = 0xA2
RETURN_OP: Final = 0xA4
BREAK_OP: Final = 0xA5
# after EXT_OP_PREFIX
MUTEX_OP: Final = 0x01
ACQUIRE_OP: Final = 0x23
RELEASE_OP: Final = 0x27
OP_REGION_OP: Final = 0x80
CREATE_FIELD_OP: Final = 0x13
FIELD_OP: Final = 0x81
DEVICE_OP: Final = 0x82

#: the NullName, used as "no target" by the operators that store a result
NULL_NAME: Final = b"\x00"

# OperationRegion spaces
SYSTEM_MEMORY: Final = 0x00
SYSTEM_IO: Final = 0x01
PCI_CONFIG: Final = 0x02

# Field flags: access type (bits 0-3), lock rule (bit 4), update rule (bits 5-6)
ANY_ACC: Final = 0
BYTE_ACC: Final = 1
WORD_ACC: Final = 2
DWORD_ACC: Final = 3
QWORD_ACC: Final = 4
BUFFER_ACC: Final = 5
NO_LOCK: Final = 0
LOCK: Final = 1
PRESERVE: Final = 0
WRITE_AS_ONES: Final = 1
WRITE_AS_ZEROS: Final = 2

# Notify values used by hotplug
NOTIFY_DEVICE_CHECK: Final = 1
NOTIFY_EJECT_REQUEST: Final = 3


# -- building blocks ------------------------------------------------------------


def pkg_length(length: int, *, include_self: bool = True) -> bytes:
    """A PkgLength for ``length`` bytes of content (spec 20.2.4).

    With ``include_self`` (every package: Scope, Method, Buffer, ...) the
    encoded value counts its own bytes, as QEMU's
    ``build_prepend_package_length`` does; field-unit lengths in a FieldList
    count bits and do not (``include_self=False``).  The width is the
    smallest that fits, QEMU's choice.
    """
    if length + 1 < 1 << 6:
        size = 1
    elif length + 2 < 1 << 12:
        size = 2
    elif length + 3 < 1 << 20:
        size = 3
    else:
        size = 4
    if include_self:
        length += size
    if size == 1:
        return bytes([length])
    if length >= 1 << (4 + 8 * (size - 1)):
        raise ValueError(f"package too long: {length}")
    # Lead byte: byte count in bits 6-7, low nibble of the length in bits 0-3.
    rest = (length >> 4).to_bytes(size - 1, "little")
    return bytes([(size - 1) << 6 | (length & 0x0F)]) + rest


def _package(op: bytes, content: bytes) -> bytes:
    return op + pkg_length(len(content)) + content


def name_seg(seg: str) -> bytes:
    """One NameSeg: up to 4 characters (A-Z, 0-9, _; not a digit first), padded with ``_``."""
    if not 1 <= len(seg) <= 4:
        raise ValueError(f"bad NameSeg {seg!r}")
    if not (seg[0].isupper() or seg[0] == "_") or not all(
            c.isupper() or c.isdigit() or c == "_" for c in seg):
        raise ValueError(f"bad NameSeg {seg!r}")
    return seg.ljust(4, "_").encode("ascii")


def name_string(path: str) -> bytes:
    """A NameString: optional ``\\`` or ``^`` prefixes, then dot-separated NameSegs.

    One segment is written bare, two with DualNamePrefix, more with
    MultiNamePrefix and a count; ``""`` after a prefix is the NullName.
    """
    prefix = bytearray()
    rest = path
    if rest.startswith("\\"):
        prefix.append(ROOT_CHAR)
        rest = rest[1:]
    else:
        while rest.startswith("^"):
            prefix.append(PARENT_PREFIX_CHAR)
            rest = rest[1:]
    segs = [name_seg(seg) for seg in rest.split(".")] if rest else []
    if not segs:
        return bytes(prefix) + NULL_NAME
    if len(segs) == 1:
        return bytes(prefix) + segs[0]
    if len(segs) == 2:
        return bytes(prefix) + bytes([DUAL_NAME_PREFIX]) + b"".join(segs)
    if len(segs) > 255:
        raise ValueError(f"name too long: {path!r}")
    return bytes(prefix) + bytes([MULTI_NAME_PREFIX, len(segs)]) + b"".join(segs)


def integer(value: int) -> bytes:
    """An integer constant in QEMU's smallest encoding (``aml_int``).

    0 is ZeroOp, 1 is OneOp, then Byte, Word, DWord or QWord prefixed data.
    QEMU's ``aml_int`` never emits OnesOp: use :func:`ones` for that.
    """
    if not 0 <= value < 1 << 64:
        raise ValueError(f"AML integer out of range: {value}")
    if value == 0:
        return bytes([ZERO_OP])
    if value == 1:
        return bytes([ONE_OP])
    for limit, prefix, size in ((0xFF, BYTE_PREFIX, 1), (0xFFFF, WORD_PREFIX, 2),
                                (0xFFFFFFFF, DWORD_PREFIX, 4)):
        if value <= limit:
            return bytes([prefix]) + value.to_bytes(size, "little")
    return bytes([QWORD_PREFIX]) + value.to_bytes(8, "little")


def ones() -> bytes:
    """OnesOp: all bits set, as wide as the table's integers."""
    return bytes([ONES_OP])


def term(value: Term) -> bytes:
    """Encode a :data:`Term`: an int as :func:`integer`, a str as a name, bytes as is."""
    if isinstance(value, bool):
        raise TypeError("use 0/1, not bool, for AML integers")
    if isinstance(value, int):
        return integer(value)
    if isinstance(value, str):
        return name_string(value)
    return bytes(value)


def _target(value: Term | None) -> bytes:
    return NULL_NAME if value is None else term(value)


def string(text: str) -> bytes:
    """A String object: ASCII characters and a NUL."""
    data = text.encode("ascii")
    if b"\x00" in data:
        raise ValueError("AML strings cannot hold NUL")
    return bytes([STRING_PREFIX]) + data + b"\x00"


def buffer(data: bytes) -> bytes:
    """A Buffer initialised with ``data`` (its size as :func:`integer`)."""
    return _package(bytes([BUFFER_OP]), integer(len(data)) + data)


def to_uuid(text: str) -> bytes:
    """``ToUUID ("aabbccdd-eeff-gghh-iijj-kkllmmnnoopp")``: a 16-byte Buffer in
    the ACPI byte order (the first three groups little-endian)."""
    groups = text.split("-")
    if [len(group) for group in groups] != [8, 4, 4, 4, 12]:
        raise ValueError(f"bad UUID {text!r}")
    raw = bytes.fromhex("".join(groups))
    return buffer(raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:])


def package(*elements: Term) -> bytes:
    """A Package of up to 255 elements."""
    if len(elements) > 255:
        raise ValueError("a Package holds at most 255 elements")
    return _package(bytes([PACKAGE_OP]),
                    bytes([len(elements)]) + b"".join(term(e) for e in elements))


def eisaid(text: str) -> bytes:
    """A compressed EISA id (``EisaId("PNP0C80")``), always a DWord as QEMU writes it."""
    if len(text) != 7 or not text[:3].isalpha() or not text[:3].isupper():
        raise ValueError(f"bad EISA id {text!r}")
    value = ((ord(text[0]) - 0x40) << 26 | (ord(text[1]) - 0x40) << 21
             | (ord(text[2]) - 0x40) << 16 | int(text[3:], 16))
    return bytes([DWORD_PREFIX]) + value.to_bytes(4, "big")


def local(index: int) -> bytes:
    """``Local0`` ... ``Local7``."""
    if not 0 <= index <= 7:
        raise ValueError(f"no Local{index}")
    return bytes([LOCAL0_OP + index])


def arg(index: int) -> bytes:
    """``Arg0`` ... ``Arg6``."""
    if not 0 <= index <= 6:
        raise ValueError(f"no Arg{index}")
    return bytes([ARG0_OP + index])


# -- named objects and blocks ----------------------------------------------------


def definition_block(*terms: bytes) -> bytes:
    """The AML body of a DSDT/SSDT: terms one after another."""
    return b"".join(terms)


def scope(path: str, *terms: bytes) -> bytes:
    """``Scope (path) { terms }``."""
    return _package(bytes([SCOPE_OP]), name_string(path) + b"".join(terms))


def device(path: str, *terms: bytes) -> bytes:
    """``Device (path) { terms }``."""
    return _package(bytes([EXT_OP_PREFIX, DEVICE_OP]), name_string(path) + b"".join(terms))


def method(path: str, argc: int, *body: bytes, serialized: bool = False,
           sync_level: int = 0) -> bytes:
    """``Method (path, argc, [Not]Serialized, sync_level) { body }``."""
    if not 0 <= argc <= 7 or not 0 <= sync_level <= 15:
        raise ValueError("argc must be 0..7 and sync_level 0..15")
    flags = argc | (0x08 if serialized else 0) | sync_level << 4
    return _package(bytes([METHOD_OP]), name_string(path) + bytes([flags]) + b"".join(body))


def name(path: str, value: Term) -> bytes:
    """``Name (path, value)``; a str value is a name reference, use :func:`string` for text."""
    return bytes([NAME_OP]) + name_string(path) + term(value)


def mutex(path: str, sync_level: int = 0) -> bytes:
    """``Mutex (path, sync_level)``."""
    return bytes([EXT_OP_PREFIX, MUTEX_OP]) + name_string(path) + bytes([sync_level])


def operation_region(path: str, space: int, offset: Term, length: Term) -> bytes:
    """``OperationRegion (path, space, offset, length)``."""
    return (bytes([EXT_OP_PREFIX, OP_REGION_OP]) + name_string(path) + bytes([space])
            + term(offset) + term(length))


def named_field(seg: str, bits: int) -> bytes:
    """A field unit ``seg, bits`` inside :func:`field`."""
    return name_seg(seg) + pkg_length(bits, include_self=False)


def reserved_field(bits: int) -> bytes:
    """``Offset (...)`` / ``, bits``: skip ``bits`` bits inside :func:`field`."""
    return b"\x00" + pkg_length(bits, include_self=False)


def field(region: str, access: int, lock: int, update: int, *elements: bytes) -> bytes:
    """``Field (region, access, lock, update) { elements }``."""
    flags = access | lock << 4 | update << 5
    return _package(bytes([EXT_OP_PREFIX, FIELD_OP]),
                    name_string(region) + bytes([flags]) + b"".join(elements))


# -- statements -------------------------------------------------------------------


def if_(predicate: Term, *body: bytes) -> bytes:
    """``If (predicate) { body }``."""
    return _package(bytes([IF_OP]), term(predicate) + b"".join(body))


def else_(*body: bytes) -> bytes:
    """``Else { body }``; it must follow an :func:`if_` directly."""
    return _package(bytes([ELSE_OP]), b"".join(body))


def while_(predicate: Term, *body: bytes) -> bytes:
    """``While (predicate) { body }``."""
    return _package(bytes([WHILE_OP]), term(predicate) + b"".join(body))


def break_() -> bytes:
    """``Break``."""
    return bytes([BREAK_OP])


def return_(value: Term) -> bytes:
    """``Return (value)``."""
    return bytes([RETURN_OP]) + term(value)


def store(source: Term, target: Term) -> bytes:
    """``Store (source, target)``, shown by iasl as ``target = source``."""
    return bytes([STORE_OP]) + term(source) + term(target)


def notify(obj: Term, value: Term) -> bytes:
    """``Notify (obj, value)``."""
    return bytes([NOTIFY_OP]) + term(obj) + term(value)


def acquire(mutex_name: Term, timeout: int = 0xFFFF) -> bytes:
    """``Acquire (mutex, timeout)``: the timeout is a raw word, 0xFFFF waits forever."""
    return bytes([EXT_OP_PREFIX, ACQUIRE_OP]) + term(mutex_name) + struct.pack("<H", timeout)


def release(mutex_name: Term) -> bytes:
    """``Release (mutex)``."""
    return bytes([EXT_OP_PREFIX, RELEASE_OP]) + term(mutex_name)


def call(method_name: str, *args: Term) -> bytes:
    """A method invocation: the name followed by its arguments."""
    return name_string(method_name) + b"".join(term(a) for a in args)


# -- operators ----------------------------------------------------------------------


def _binary(op: int, left: Term, right: Term, target: Term | None) -> bytes:
    return bytes([op]) + term(left) + term(right) + _target(target)


def add(left: Term, right: Term, target: Term | None = None) -> bytes:
    """``Add (left, right, target)``; no target is the NullName."""
    return _binary(ADD_OP, left, right, target)


def subtract(left: Term, right: Term, target: Term | None = None) -> bytes:
    """``Subtract (left, right, target)``."""
    return _binary(SUBTRACT_OP, left, right, target)


def and_(left: Term, right: Term, target: Term | None = None) -> bytes:
    """``And (left, right, target)``."""
    return _binary(AND_OP, left, right, target)


def or_(left: Term, right: Term, target: Term | None = None) -> bytes:
    """``Or (left, right, target)``."""
    return _binary(OR_OP, left, right, target)


def shift_left(value: Term, count: Term, target: Term | None = None) -> bytes:
    """``ShiftLeft (value, count, target)``."""
    return _binary(SHIFT_LEFT_OP, value, count, target)


def shift_right(value: Term, count: Term, target: Term | None = None) -> bytes:
    """``ShiftRight (value, count, target)``."""
    return _binary(SHIFT_RIGHT_OP, value, count, target)


def increment(target: Term) -> bytes:
    """``Increment (target)``."""
    return bytes([INCREMENT_OP]) + term(target)


def decrement(target: Term) -> bytes:
    """``Decrement (target)``."""
    return bytes([DECREMENT_OP]) + term(target)


def lequal(left: Term, right: Term) -> bytes:
    """``LEqual (left, right)``."""
    return bytes([LEQUAL_OP]) + term(left) + term(right)


def lless(left: Term, right: Term) -> bytes:
    """``LLess (left, right)``."""
    return bytes([LLESS_OP]) + term(left) + term(right)


def lgreater(left: Term, right: Term) -> bytes:
    """``LGreater (left, right)``."""
    return bytes([LGREATER_OP]) + term(left) + term(right)


def land(left: Term, right: Term) -> bytes:
    """``LAnd (left, right)``."""
    return bytes([LAND_OP]) + term(left) + term(right)


def lor(left: Term, right: Term) -> bytes:
    """``LOr (left, right)``."""
    return bytes([LOR_OP]) + term(left) + term(right)


def lnot(value: Term) -> bytes:
    """``LNot (value)``."""
    return bytes([LNOT_OP]) + term(value)


def to_integer(value: Term, target: Term | None = None) -> bytes:
    """``ToInteger (value, target)``."""
    return bytes([TO_INTEGER_OP]) + term(value) + _target(target)


def to_buffer(value: Term, target: Term | None = None) -> bytes:
    """``ToBuffer (value, target)``."""
    return bytes([TO_BUFFER_OP]) + term(value) + _target(target)


def concatenate(left: Term, right: Term, target: Term | None = None) -> bytes:
    """``Concatenate (left, right, target)``."""
    return _binary(CONCAT_OP, left, right, target)


def index(source: Term, position: Term, target: Term | None = None) -> bytes:
    """``Index (source, position, target)``."""
    return _binary(INDEX_OP, source, position, target)


def deref_of(reference: Term) -> bytes:
    """``DerefOf (reference)``."""
    return bytes([DEREF_OF_OP]) + term(reference)


def object_type(obj: Term) -> bytes:
    """``ObjectType (obj)``."""
    return bytes([OBJECT_TYPE_OP]) + term(obj)


def create_field(source: Term, bit_index: Term, bits: Term, field_name: str) -> bytes:
    """``CreateField (source, bit_index, bits, name)``."""
    return (bytes([EXT_OP_PREFIX, CREATE_FIELD_OP]) + term(source) + term(bit_index)
            + term(bits) + name_string(field_name))


def size_of(obj: Term) -> bytes:
    """``SizeOf (obj)``."""
    return bytes([SIZE_OF_OP]) + term(obj)


def create_dword_field(source: Term, index: Term, field_name: str) -> bytes:
    """``CreateDWordField (source, index, name)``: ``index`` in bytes."""
    return bytes([CREATE_DWORD_FIELD_OP]) + term(source) + term(index) + name_string(field_name)


def create_qword_field(source: Term, index: Term, field_name: str) -> bytes:
    """``CreateQWordField (source, index, name)``: ``index`` in bytes."""
    return bytes([CREATE_QWORD_FIELD_OP]) + term(source) + term(index) + name_string(field_name)


# -- resource templates (spec 6.4) -----------------------------------------------------

# Address-space descriptor flags (QEMU's AmlConsumerAndProducer etc.).
RESOURCE_PRODUCER: Final = 0
RESOURCE_CONSUMER: Final = 1
POS_DECODE: Final = 0
SUB_DECODE: Final = 1
MIN_FIXED: Final = 1
MAX_FIXED: Final = 1
NOT_FIXED: Final = 0
# memory type-specific flags
READ_ONLY: Final = 0
READ_WRITE: Final = 1
NON_CACHEABLE: Final = 0
CACHEABLE: Final = 1
WRITE_COMBINING: Final = 2
PREFETCHABLE: Final = 3
ADDRESS_RANGE_MEMORY: Final = 0
# I/O type-specific flags
ISA_ONLY: Final = 1
NON_ISA_ONLY: Final = 2
ENTIRE_RANGE: Final = 3
# resource types of address-space descriptors
_MEMORY_RANGE: Final = 0
_IO_RANGE: Final = 1
_BUS_NUMBER_RANGE: Final = 2
# IO descriptor decode
DECODE10: Final = 0
DECODE16: Final = 1


def resource_template(*descriptors: bytes) -> bytes:
    """``ResourceTemplate () { descriptors }``: a Buffer ending with the EndTag.

    The EndTag's checksum byte is 0 ("treat as correct"), as QEMU writes it.
    """
    return buffer(b"".join(descriptors) + b"\x79\x00")


def io(decode: int, minimum: int, maximum: int, alignment: int, length: int) -> bytes:
    """``IO (Decode16|Decode10, min, max, alignment, length)``: a small I/O port descriptor."""
    return struct.pack("<BBHHBB", 0x47, decode, minimum, maximum, alignment, length)


def _general_flags(producer: int, decode: int, min_fixed: int, max_fixed: int) -> int:
    return max_fixed << 3 | min_fixed << 2 | decode << 1 | producer


def _memory_flags(cacheable: int, read_write: int, mem_type: int = ADDRESS_RANGE_MEMORY) -> int:
    return mem_type << 3 | cacheable << 1 | read_write


def qword_memory(*, producer: int = RESOURCE_PRODUCER, decode: int = POS_DECODE,
                 min_fixed: int = MIN_FIXED, max_fixed: int = MAX_FIXED,
                 cacheable: int = CACHEABLE, read_write: int = READ_WRITE,
                 granularity: int = 0, minimum: int, maximum: int, translation: int = 0,
                 length: int) -> bytes:
    """``QWordMemory (...)``: a 46-byte extended address-space descriptor.

    Field byte offsets: minimum 0x0E, maximum 0x16, translation 0x1E, length 0x26.
    """
    return struct.pack("<BHBBBQQQQQ", 0x8A, 43, _MEMORY_RANGE,
                       _general_flags(producer, decode, min_fixed, max_fixed),
                       _memory_flags(cacheable, read_write),
                       granularity, minimum, maximum, translation, length)


def dword_memory(*, producer: int = RESOURCE_PRODUCER, decode: int = POS_DECODE,
                 min_fixed: int = MIN_FIXED, max_fixed: int = MAX_FIXED,
                 cacheable: int = CACHEABLE, read_write: int = READ_WRITE,
                 granularity: int = 0, minimum: int, maximum: int, translation: int = 0,
                 length: int) -> bytes:
    """``DWordMemory (...)``: a 26-byte descriptor.

    Field byte offsets: minimum 0x0A, maximum 0x0E, translation 0x12, length 0x16.
    """
    return struct.pack("<BHBBBIIIII", 0x87, 23, _MEMORY_RANGE,
                       _general_flags(producer, decode, min_fixed, max_fixed),
                       _memory_flags(cacheable, read_write),
                       granularity, minimum, maximum, translation, length)


def _word_address(resource_type: int, type_flags: int, producer: int, decode: int,
                  min_fixed: int, max_fixed: int, granularity: int, minimum: int,
                  maximum: int, translation: int, length: int) -> bytes:
    return struct.pack("<BHBBBHHHHH", 0x88, 13, resource_type,
                       _general_flags(producer, decode, min_fixed, max_fixed), type_flags,
                       granularity, minimum, maximum, translation, length)


def word_bus_number(*, producer: int = RESOURCE_PRODUCER, min_fixed: int = MIN_FIXED,
                    max_fixed: int = MAX_FIXED, decode: int = POS_DECODE,
                    granularity: int = 0, minimum: int, maximum: int, translation: int = 0,
                    length: int) -> bytes:
    """``WordBusNumber (...)``: a 16-byte descriptor."""
    return _word_address(_BUS_NUMBER_RANGE, 0, producer, decode, min_fixed, max_fixed,
                         granularity, minimum, maximum, translation, length)


def word_io(*, producer: int = RESOURCE_PRODUCER, min_fixed: int = MIN_FIXED,
            max_fixed: int = MAX_FIXED, decode: int = POS_DECODE,
            isa_ranges: int = ENTIRE_RANGE, granularity: int = 0, minimum: int,
            maximum: int, translation: int = 0, length: int) -> bytes:
    """``WordIO (..., TypeStatic, DenseTranslation)``: a 16-byte descriptor."""
    return _word_address(_IO_RANGE, isa_ranges, producer, decode, min_fixed, max_fixed,
                         granularity, minimum, maximum, translation, length)
