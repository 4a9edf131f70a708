"""The AML encoder: exact bytes derived by hand, cross-checked with iasl's compiler."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from plugins import aml


@pytest.mark.parametrize(("value", "encoded"), [
    (0, b"\x00"), (1, b"\x01"), (2, b"\x0a\x02"), (0xFF, b"\x0a\xff"),
    (0x100, b"\x0b\x00\x01"), (0xFFFF, b"\x0b\xff\xff"), (0x10000, b"\x0c\x00\x00\x01\x00"),
    (0xFFFFFFFF, b"\x0c\xff\xff\xff\xff"), (1 << 32, b"\x0e" + (1 << 32).to_bytes(8, "little")),
])
def test_integer_smallest_encoding(value, encoded):
    assert aml.integer(value) == encoded


def test_integer_range_and_ones():
    assert aml.ones() == b"\xff"
    with pytest.raises(ValueError):
        aml.integer(-1)
    with pytest.raises(ValueError):
        aml.integer(1 << 64)
    with pytest.raises(TypeError):
        aml.term(True)


@pytest.mark.parametrize(("length", "encoded"), [
    (0, b"\x01"), (62, b"\x3f"),            # fits in one byte with itself
    (63, b"\x41\x04"),                      # 63 + 2 = 65 = 0x41 -> 2 bytes
    (4093, b"\x4f\xff"),                    # 4093 + 2 = 0xfff, the largest 2-byte length
    (4094, b"\x81\x00\x01"),                # 4094 + 3 = 0x1001 -> 3 bytes
])
def test_pkg_length_includes_itself(length, encoded):
    assert aml.pkg_length(length) == encoded


def test_pkg_length_of_field_units_counts_bits_only():
    assert aml.pkg_length(32, include_self=False) == b"\x20"
    assert aml.pkg_length(160, include_self=False) == b"\x40\x0a"


@pytest.mark.parametrize(("path", "encoded"), [
    ("MPX", b"MPX_"), ("_SB", b"_SB_"), ("\\", b"\\\x00"),
    ("\\_SB.PCI0", b"\\\x2e_SB_PCI0"), ("\\_SB.PCI0.MHPD", b"\\\x2f\x03_SB_PCI0MHPD"),
    ("^^FOO", b"^^FOO_"),
])
def test_name_strings(path, encoded):
    assert aml.name_string(path) == encoded


@pytest.mark.parametrize("bad", ["", "TOOLONG", "1ABC", "a", "A-B"])
def test_bad_name_segs(bad):
    with pytest.raises(ValueError):
        aml.name_seg(bad)


def test_small_constructs():
    assert aml.string("AB") == b"\x0dAB\x00"
    assert aml.eisaid("PNP0C80") == b"\x0c\x41\xd0\x0c\x80"
    assert aml.eisaid("PNP0A03") == b"\x0c\x41\xd0\x0a\x03"
    assert aml.local(0) + aml.local(7) + aml.arg(0) + aml.arg(6) == b"\x60\x67\x68\x6e"
    assert aml.store(aml.local(0), "MSEL") == b"\x70\x60MSEL"
    assert aml.add(aml.local(0), 1, aml.local(0)) == b"\x72\x60\x01\x60"
    assert aml.add(1, 2) == b"\x72\x01\x0a\x02\x00"  # no target: NullName
    assert aml.to_integer(aml.arg(0)) == b"\x99\x68\x00"
    assert aml.acquire("MLCK", 0xFFFF) == b"\x5b\x23MLCK\xff\xff"
    assert aml.release("MLCK") == b"\x5b\x27MLCK"
    assert aml.mutex("MLCK", 0) == b"\x5b\x01MLCK\x00"
    assert aml.notify("MP00", aml.arg(1)) == b"\x86MP00\x69"
    assert aml.return_(0) == b"\xa4\x00"
    assert aml.method("_STA", 0, aml.return_(0x0B)) == b"\x14\x09_STA\x00\xa4\x0a\x0b"
    assert aml.method("MCRS", 1, serialized=True) == b"\x14\x06MCRS\x09"
    assert aml.if_(aml.lequal("MDNR", 0), aml.return_(0)) == (
        b"\xa0\x09\x93MDNR\x00\xa4\x00")
    assert aml.resource_template(aml.io(aml.DECODE16, 0x0A00, 0x0A00, 0, 0x18)) == (
        b"\x11\x0d\x0a\x0a\x47\x01\x00\x0a\x00\x0a\x00\x18\x79\x00")
    assert aml.package(1, "FOO") == b"\x12\x07\x02\x01FOO_"


def test_resource_descriptor_sizes_and_offsets():
    q = aml.qword_memory(minimum=0x1122, maximum=0x3344, length=0x5566)
    assert len(q) == 46 and q[:6] == b"\x8a\x2b\x00\x00\x0c\x03"
    assert q[0x0E:0x10] == b"\x22\x11" and q[0x16:0x18] == b"\x44\x33"
    assert q[0x26:0x28] == b"\x66\x55"
    d = aml.dword_memory(cacheable=aml.NON_CACHEABLE, minimum=1, maximum=2, length=3)
    assert len(d) == 26 and d[:6] == b"\x87\x17\x00\x00\x0c\x01"
    assert (d[0x0A], d[0x0E], d[0x16]) == (1, 2, 3)
    assert len(aml.word_io(minimum=0, maximum=1, length=2)) == 16


# -- cross-check with iasl's compiler -----------------------------------------------

REGION = ("OperationRegion (HPMR, SystemIO, 0x0A00, 0x18)\n ",
          aml.operation_region("HPMR", aml.SYSTEM_IO, 0x0A00, 0x18))

#: (ASL snippet, our encoding of it)
SNIPPETS = [
    ("Name (MDNR, 0x03)", aml.name("MDNR", 3)),
    ("Name (BIG, 0x123456789)", aml.name("BIG", 0x123456789)),
    ('Name (_UID, "0x0A")', aml.name("_UID", aml.string("0x0A"))),
    ('Name (_HID, EisaId ("PNP0C80"))', aml.name("_HID", aml.eisaid("PNP0C80"))),
    ("Mutex (MLCK, 0)", aml.mutex("MLCK", 0)),
    ("OperationRegion (HPMR, SystemIO, 0x0A00, 0x18)",
     aml.operation_region("HPMR", aml.SYSTEM_IO, 0x0A00, 0x18)),
    (REGION[0] + "Field (HPMR, ByteAcc, NoLock, WriteAsZeros)"
     " { Offset (0x14), MES, 1, MINS, 1 }",
     REGION[1] + aml.field("HPMR", aml.BYTE_ACC, aml.NO_LOCK, aml.WRITE_AS_ZEROS,
               aml.reserved_field(0x14 * 8), aml.named_field("MES", 1),
               aml.named_field("MINS", 1))),
    (REGION[0] + "Field (HPMR, DWordAcc, NoLock, Preserve) { MSEL, 32, MOEV, 32 }",
     REGION[1] + aml.field("HPMR", aml.DWORD_ACC, aml.NO_LOCK, aml.PRESERVE,
               aml.named_field("MSEL", 32), aml.named_field("MOEV", 32))),
    ("Method (MSCN, 1, Serialized) { Local0 = Zero\n"
     " While (Local0 < Arg0) { If (Local0 == One) { Notify (\\_SB, 0x03) }"
     " Else { Local0 = ToInteger (Arg0) }\n Local0 += One }\n Return (Local0) }",
     aml.method("MSCN", 1,
                aml.store(0, aml.local(0)),
                aml.while_(aml.lless(aml.local(0), aml.arg(0)),
                           aml.if_(aml.lequal(aml.local(0), 1), aml.notify("\\_SB", 3)),
                           aml.else_(aml.store(aml.to_integer(aml.arg(0)), aml.local(0))),
                           aml.add(aml.local(0), 1, aml.local(0))),
                aml.return_(aml.local(0)), serialized=True)),
    ("Method (M2, 2) { Local1 = (Arg0 & 0xFF)\n Local1 = (Local1 | Arg1)\n"
     " Local1 = (Local1 << 0x04)\n Local1 = (Local1 - One) }",
     aml.method("M2", 2, aml.and_(aml.arg(0), 0xFF, aml.local(1)),
                aml.or_(aml.local(1), aml.arg(1), aml.local(1)),
                aml.shift_left(aml.local(1), 4, aml.local(1)),
                aml.subtract(aml.local(1), 1, aml.local(1)))),
    ("Name (BUF, Buffer (0x08) {1, 2, 3, 4, 5, 6, 7, 8})\n"
     " CreateDWordField (BUF, 0x04, DW)\n CreateQWordField (BUF, Zero, QW)",
     aml.name("BUF", aml.buffer(bytes(range(1, 9)))) + aml.create_dword_field("BUF", 4, "DW")
     + aml.create_qword_field("BUF", 0, "QW")),
    ("Name (_CRS, ResourceTemplate () {\n"
     " QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,\n"
     "  0, 0, 0xFFFFFFFFFFFFFFFE, 0, 0xFFFFFFFFFFFFFFFF,,,, AddressRangeMemory, TypeStatic)\n"
     " DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,"
     " ReadWrite,\n  0, 0x40000000, 0xFEBFFFFF, 0, 0xBEC00000,,,, AddressRangeMemory,"
     " TypeStatic)\n"
     " WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0,"
     " 0x100,,,)\n"
     " WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,"
     " 0, 0x0D00, 0xFFFF, 0, 0xF300,,,, TypeStatic, DenseTranslation)\n"
     " IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08,)\n})",
     aml.name("_CRS", aml.resource_template(
         aml.qword_memory(minimum=0, maximum=0xFFFFFFFFFFFFFFFE, length=0xFFFFFFFFFFFFFFFF),
         aml.dword_memory(cacheable=aml.NON_CACHEABLE, minimum=0x40000000,
                          maximum=0xFEBFFFFF, length=0xBEC00000),
         aml.word_bus_number(minimum=0, maximum=0xFF, length=0x100),
         aml.word_io(minimum=0x0D00, maximum=0xFFFF, length=0xF300),
         aml.io(aml.DECODE16, 0x0CF8, 0x0CF8, 1, 8)))),
    ("Device (\\_SB.DEV) { Name (_ADR, Zero) }\n Scope (\\_SB.DEV) { Name (X, One) }",
     aml.device("\\_SB.DEV", aml.name("_ADR", 0)) + aml.scope("\\_SB.DEV", aml.name("X", 1))),
    ("Name (PKG, Package () { One, 0x1234, \"s\" })",
     aml.name("PKG", aml.package(1, 0x1234, aml.string("s")))),
]


@pytest.mark.parametrize(("asl", "ours"), SNIPPETS, ids=[s[0][:30] for s in SNIPPETS])
def test_iasl_compiles_the_same_bytes(iasl, tmp_path: Path, asl, ours):
    source = tmp_path / "t.asl"
    # revision 2: 64-bit integers, so QWord constants survive
    source.write_text('DefinitionBlock ("", "SSDT", 2, "BOCHS ", "BXPC    ", 1)\n{\n'
                      f" {asl}\n}}\n")
    # -oa: no optimisation, so iasl writes what the ASL says (as QEMU does).
    done = subprocess.run([iasl, "-oa", "-p", str(tmp_path / "t"), str(source)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    compiled = (tmp_path / "t.aml").read_bytes()
    assert compiled[36:] == ours
