"""HMP ``info registers``: the CPU state in QEMU 7.2's ``x86_cpu_dump_state`` layout
(with the FPU and SSE part, as ``info registers`` asks for it).

The state comes from the ``guest-cpu`` service's ``cpu_state()`` snapshot.
"""

from __future__ import annotations

from typing import Any

_SEGMENTS = (("ES", "es"), ("CS", "cs"), ("SS", "ss"), ("DS", "ds"), ("FS", "fs"),
             ("GS", "gs"), ("LDT", "ldtr"), ("TR", "tr"))
_SYSTEM_TYPES = (
    ("Reserved", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16", "TaskGate", "IntGate16",
     "TrapGate16", "Reserved", "TSS32-avl", "Reserved", "TSS32-busy", "CallGate32", "Reserved",
     "IntGate32", "TrapGate32"),
    ("<hiword>", "Reserved", "LDT", "Reserved", "Reserved", "Reserved", "Reserved", "Reserved",
     "Reserved", "TSS64-avl", "Reserved", "TSS64-busy", "CallGate64", "Reserved", "IntGate64",
     "TrapGate64"),
)
DESC_L, DESC_B, DESC_P, DESC_S, DESC_CS = 1 << 21, 1 << 22, 1 << 15, 1 << 12, 1 << 11


def _segment(name: str, selector: int, base: int, limit: int, flags: int, *, cs64: bool,
             pe: bool, lma: bool) -> str:
    if cs64:
        text = f"{name:<3}={selector:04x} {base:016x} {limit:08x} {flags & 0x00FFFF00:08x}"
    else:
        text = f"{name:<3}={selector:04x} {base & 0xFFFFFFFF:08x} {limit:08x} " \
               f"{flags & 0x00FFFF00:08x}"
    if not pe or not flags & DESC_P:
        return text + "\n"
    text += f" DPL={(flags >> 13) & 3} "
    if flags & DESC_S:
        if flags & DESC_CS:
            text += "CS64" if flags & DESC_L else "CS32" if flags & DESC_B else "CS16"
            text += f" [{'C' if flags & (1 << 10) else '-'}{'R' if flags & (1 << 9) else '-'}"
        else:
            text += "DS  " if flags & DESC_B or lma else "DS16"
            text += f" [{'E' if flags & (1 << 10) else '-'}{'W' if flags & (1 << 9) else '-'}"
        text += f"{'A' if flags & (1 << 8) else '-'}]"
    else:
        text += _SYSTEM_TYPES[1 if lma else 0][(flags >> 8) & 0xF]
    return text + "\n"


def dump_state(state: dict[str, Any], *, halted: bool) -> str:
    """``x86_cpu_dump_state(..., CPU_DUMP_FPU)`` of one snapshot."""
    segments = dict(state["segments"])
    selector, _, limit, flags = segments["fs"]
    segments["fs"] = (selector, state["fs_base"], limit, flags)
    selector, _, limit, flags = segments["gs"]
    segments["gs"] = (selector, state["gs_base"], limit, flags)
    lma = bool(state["efer"] & 0x400) and bool(state["cr0"] & 0x8000_0000)
    pe = bool(state["cr0"] & 1)
    cs64 = lma and bool(segments["cs"][3] & DESC_L)
    rflags = state["rflags"]
    flag_letters = "".join(letter if rflags & bit else "-" for letter, bit in (
        ("D", 0x400), ("O", 0x800), ("S", 0x80), ("Z", 0x40), ("A", 0x10), ("P", 0x4),
        ("C", 0x1)))
    cpl = segments["cs"][0] & 3
    status = f"CPL={cpl} II=0 A20=1 SMM=0 HLT={1 if halted else 0}\n"
    out = []
    names: tuple[tuple[str, str], ...]
    if cs64:
        names = (("RAX", "rax"), ("RBX", "rbx"), ("RCX", "rcx"), ("RDX", "rdx"),
                 ("RSI", "rsi"), ("RDI", "rdi"), ("RBP", "rbp"), ("RSP", "rsp"),
                 ("R8 ", "r8"), ("R9 ", "r9"), ("R10", "r10"), ("R11", "r11"),
                 ("R12", "r12"), ("R13", "r13"), ("R14", "r14"), ("R15", "r15"))
        for row in range(4):
            out.append(" ".join(f"{label}={state[key]:016x}"
                                for label, key in names[row * 4:row * 4 + 4]) + "\n")
        out.append(f"RIP={state['rip']:016x} RFL={rflags:08x} [{flag_letters}] {status}")
    else:
        names = (("EAX", "rax"), ("EBX", "rbx"), ("ECX", "rcx"), ("EDX", "rdx"),
                 ("ESI", "rsi"), ("EDI", "rdi"), ("EBP", "rbp"), ("ESP", "rsp"))
        for row in range(2):
            out.append(" ".join(f"{label}={state[key] & 0xFFFFFFFF:08x}"
                                for label, key in names[row * 4:row * 4 + 4]) + "\n")
        out.append(f"EIP={state['rip'] & 0xFFFFFFFF:08x} EFL={rflags:08x} [{flag_letters}] "
                   f"{status}")
    for label, key in _SEGMENTS:
        out.append(_segment(label, *segments[key], cs64=cs64, pe=pe, lma=lma))
    gdt_base, gdt_limit = state["gdtr"]
    idt_base, idt_limit = state["idtr"]
    if lma:
        out.append(f"GDT=     {gdt_base:016x} {gdt_limit:08x}\n")
        out.append(f"IDT=     {idt_base:016x} {idt_limit:08x}\n")
        out.append(f"CR0={state['cr0'] & 0xFFFFFFFF:08x} CR2={state['cr2']:016x} "
                   f"CR3={state['cr3']:016x} CR4={state['cr4'] & 0xFFFFFFFF:08x}\n")
        out.append("".join(f"DR{i}={state[f'dr{i}']:016x} " for i in range(4)) + "\n")
        out.append(f"DR6={state['dr6']:016x} DR7={state['dr7']:016x}\n")
    else:
        out.append(f"GDT=     {gdt_base & 0xFFFFFFFF:08x} {gdt_limit:08x}\n")
        out.append(f"IDT=     {idt_base & 0xFFFFFFFF:08x} {idt_limit:08x}\n")
        out.append(f"CR0={state['cr0'] & 0xFFFFFFFF:08x} CR2={state['cr2'] & 0xFFFFFFFF:08x} "
                   f"CR3={state['cr3'] & 0xFFFFFFFF:08x} CR4={state['cr4'] & 0xFFFFFFFF:08x}\n")
        out.append("".join(f"DR{i}={state[f'dr{i}']:016x} " for i in range(4)) + "\n")
        out.append(f"DR6={state['dr6']:016x} DR7={state['dr7']:016x}\n")
    out.append(f"EFER={state['efer']:016x}\n")
    tags = state["fptag"]
    abridged = sum(1 << i for i in range(8) if (tags >> (2 * i)) & 3 != 3)
    top = (state["fpsw"] >> 11) & 7
    out.append(f"FCW={state['fpcw']:04x} FSW={state['fpsw']:04x} [ST={top}] "
               f"FTW={abridged:02x} MXCSR={state['mxcsr']:08x}\n")
    for i, (mantissa, exponent) in enumerate(state["fpr"]):
        out.append(f"FPR{i}={mantissa:016x} {exponent:04x}" + ("\n" if i & 1 else " "))
    count = 16 if cs64 else 8
    for i in range(count):
        value = state["xmm"][i]
        out.append(f"XMM{i:02d}={value >> 64:016x} {value & (2**64 - 1):016x}"
                   + ("\n" if i & 1 else " "))
    return "".join(out)
