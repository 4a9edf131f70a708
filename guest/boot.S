/* pyqom's OSPM guest: the Multiboot v1 entry (32-bit protected mode, as a
 * Multiboot loader leaves the CPU), identity page tables over the first
 * 64 GiB in 2 MiB pages, long mode, then kmain(magic, info) in C. */

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003          /* page-aligned modules, memory info */

        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

        .section .bss
        .align 4096
pml4:   .skip 4096
pdpt:   .skip 4096
pds:    .skip 4096 * 64              /* 64 page directories: 64 GiB */
        .align 16
stack:  .skip 65536
stack_top:

        .section .data
        .align 8
gdt64:  .quad 0
        .quad 0x00AF9A000000FFFF     /* 0x08: 64-bit code */
        .quad 0x00CF92000000FFFF     /* 0x10: data */
gdt64_end:
gdt64_ptr:
        .word gdt64_end - gdt64 - 1
        .long gdt64
saved_magic: .long 0
saved_info:  .long 0
        .global entry_regs
entry_regs:  .skip 12 * 4            /* eax ebx ecx edx esi edi ebp esp eflags cr0 cs ds */

        .section .text
        .code32
        .global _start
_start:
        mov %eax, entry_regs
        mov %ebx, entry_regs + 4
        mov %ecx, entry_regs + 8
        mov %edx, entry_regs + 12
        mov %esi, entry_regs + 16
        mov %edi, entry_regs + 20
        mov %ebp, entry_regs + 24
        mov %esp, entry_regs + 28
        pushf                        /* on the loader's stack: it has one */
        popl entry_regs + 32
        mov %cr0, %ecx
        mov %ecx, entry_regs + 36
        mov %cs, %ecx
        mov %ecx, entry_regs + 40
        mov %ds, %ecx
        mov %ecx, entry_regs + 44
        cli
        mov %eax, saved_magic
        mov %ebx, saved_info
        mov $stack_top, %esp

        /* PML4[0] -> PDPT; PDPT[i] -> PD i; PD entries: 2 MiB pages. */
        mov $pdpt, %eax
        or $0x3, %eax
        mov %eax, pml4
        xor %ecx, %ecx
1:      mov %ecx, %eax
        shl $12, %eax
        add $pds, %eax
        or $0x3, %eax
        mov %eax, pdpt(,%ecx,8)
        inc %ecx
        cmp $64, %ecx
        jne 1b
        /* 64 * 512 entries: entry n maps n * 2 MiB (present, writable, 2 MiB page);
         * all but the first (the kernel's) are no-execute, as an OS maps its data. */
        xor %ecx, %ecx
2:      mov %ecx, %eax
        shl $21, %eax
        or $0x83, %eax
        mov %ecx, %edx
        shr $11, %edx                /* high half of n * 2 MiB */
        test %ecx, %ecx
        jz 4f
        or $0x80000000, %edx         /* NX */
4:      mov %eax, pds(,%ecx,8)
        mov %edx, pds+4(,%ecx,8)
        inc %ecx
        cmp $(64 * 512), %ecx
        jne 2b

        mov %cr4, %eax
        or $0x20, %eax               /* PAE */
        mov %eax, %cr4
        mov $pml4, %eax
        mov %eax, %cr3
        mov $0xC0000080, %ecx        /* EFER */
        rdmsr
        or $0x900, %eax              /* LME, NXE */
        wrmsr
        mov %cr0, %eax
        or $0x80000000, %eax         /* PG */
        mov %eax, %cr0
        lgdt gdt64_ptr
        ljmp $0x08, $long_mode

        .code64
long_mode:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov %ax, %fs
        mov %ax, %gs
        mov $stack_top, %rsp
        mov saved_magic(%rip), %edi
        mov saved_info(%rip), %esi
        call kmain
3:      cli
        hlt
        jmp 3b
/* Interrupt entry points (64-bit): 256 stubs that push their vector, then a
 * common path that saves the caller-saved registers, calls
 * interrupt(vector) in C, and returns with iretq. */
        .code64
        .section .text
        .global interrupt_stubs
        .align 16
interrupt_stubs:
        .set vector, 0
        .rept 256
        .align 16
        push $vector
        jmp interrupt_common
        .set vector, vector + 1
        .endr
interrupt_common:
        push %rax
        push %rcx
        push %rdx
        push %rsi
        push %rdi
        push %r8
        push %r9
        push %r10
        push %r11
        mov 72(%rsp), %rdi           /* the vector */
        call interrupt
        pop %r11
        pop %r10
        pop %r9
        pop %r8
        pop %rdi
        pop %rsi
        pop %rdx
        pop %rcx
        pop %rax
        add $8, %rsp                 /* the vector */
        iretq

        .section .note.GNU-stack, "", @progbits
