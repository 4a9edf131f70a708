/* pyqom's OSPM guest: reads what the Multiboot loader and the firmware left
 * (the info block, the memory map, the ACPI tables), then plays the OSPM side
 * of ACPI memory hotplug over QEMU's 0x0a00 register block, printing one fact
 * per line on the debug console (port 0x402).
 *
 * The kernel command line (-append) picks a policy:
 *   online        (default) online and test inserted memory, eject on request
 *   never-online  report inserted memory but leave it offline (_OST failure)
 *   never-eject   ignore unplug requests
 *   ost-fail      report a failure status for every event
 * and options:
 *   exit=N        write N to isa-debug-exit (port 0x501) once booted
 *   events=N      exit (status 0x21) after N hotplug events
 *   bench=N       store N MiB over RAM from 32 MiB once booted, and over each
 *                 inserted DIMM: a first pass, then the timed one between the
 *                 "bench ... begin" and "bench ... end" lines
 *   spin          after booting, store over 16 MiB of RAM for ever (a busy guest)
 *   hammer        after booting, read the hotplug block's status for ever, with
 *                 no pause (a guest that busy-polls a device)
 *   poweroff      once booted, power the machine off (ACPI S5 through PM1a_CNT)
 *   powerbutton   enable the ACPI power button; pressed (system_powerdown), it
 *                 powers the machine off
 *   sci           wait for hotplug events with sti; hlt, woken by the SCI
 *                 (IRQ 9 through the 8259s, remapped to vectors 0x20-0x2f)
 *                 instead of polling GPE0
 *   nvdimm        find the NFIT and the NVDIMM SSDT, then call the label
 *                 functions of every NVDIMM as the SSDT's _DSM does (request
 *                 in the DSM page, its address OUT to port 0x0a18, result
 *                 read back): label size, read, write, read again; and QEMU's
 *                 Read FIT, compared with the NFIT; on an NVDIMM hotplug
 *                 (GPE0 bit 4) it reads the FIT again as _FIT does
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define DEBUGCON 0x402
#define DEBUG_EXIT 0x501
#define MHP_BASE 0x0a00
#define GPE0_STS 0xafe0
#define GPE0_EN 0xafe2
#define MHP_GPE_BIT 0x08
#define MAX_SLOTS 256

extern u32 entry_regs[12];   /* boot.S: eax ebx ecx edx esi edi ebp esp eflags cr0 cs ds */

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* -- output --------------------------------------------------------------- */

static void putc(char c) { outb(DEBUGCON, (u8)c); }
static void puts(const char *s) { while (*s) putc(*s++); }
static void puthex(u64 v)
{
    char buf[19];
    int i = 18;
    buf[i] = 0;
    do { buf[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    buf[--i] = 'x';
    buf[--i] = '0';
    puts(buf + i);
}
static void putdec(u64 v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    puts(buf + i);
}
static void putn(const char *s, int n) { for (int i = 0; i < n; i++) putc(s[i]); }
static void line(const char *key, u64 value) { puts(key); putc(' '); puthex(value); putc('\n'); }

/* -- the command line ------------------------------------------------------ */

static const char *cmdline = "";

/* Whether the word `w` (up to a space, '=' or the end) is on the command line;
 * `value` gets the number after "w=" if there is one. */
static int option(const char *w, u64 *value)
{
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ') p++;
        const char *a = p, *b = w;
        while (*b && *a == *b) { a++; b++; }
        if (!*b && (*a == 0 || *a == ' ' || *a == '=')) {
            if (*a == '=' && value) {
                u64 v = 0;
                a++;
                int base = 10;
                if (a[0] == '0' && a[1] == 'x') { base = 16; a += 2; }
                for (;; a++) {
                    int d;
                    if (*a >= '0' && *a <= '9') d = *a - '0';
                    else if (base == 16 && *a >= 'a' && *a <= 'f') d = *a - 'a' + 10;
                    else break;
                    v = v * base + d;
                }
                *value = v;
            }
            return 1;
        }
        while (*p && *p != ' ') p++;
    }
    return 0;
}

/* -- Multiboot --------------------------------------------------------------- */

struct mb_info {
    u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    u32 syms[4];
    u32 mmap_length, mmap_addr, drives_length, drives_addr, config_table, boot_loader_name;
};

struct mb_module { u32 start, end, string, reserved; };

static void show_multiboot(u32 magic, const struct mb_info *mbi)
{
    static const char *names[] = {"eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp",
                                  "eflags", "cr0", "cs", "ds"};
    for (int i = 0; i < 12; i++) { puts("entry "); line(names[i], entry_regs[i]); }
    line("magic", magic);
    line("info", (u64)(unsigned long)mbi);
    line("flags", mbi->flags);
    if (mbi->flags & 1) { line("mem_lower", mbi->mem_lower); line("mem_upper", mbi->mem_upper); }
    if (mbi->flags & 2) line("boot_device", mbi->boot_device);
    if (mbi->flags & 4) {
        cmdline = (const char *)(unsigned long)mbi->cmdline;
        puts("cmdline \""); puts(cmdline); puts("\"\n");
    }
    if (mbi->flags & 8) {
        line("mods_count", mbi->mods_count);
        line("mods_addr", mbi->mods_addr);
        const struct mb_module *mod = (const struct mb_module *)(unsigned long)mbi->mods_addr;
        for (u32 i = 0; i < mbi->mods_count; i++) {
            puts("module "); puthex(mod[i].start); putc(' '); puthex(mod[i].end);
            puts(" \""); puts((const char *)(unsigned long)mod[i].string); puts("\" ");
            const u8 *data = (const u8 *)(unsigned long)mod[i].start;
            u32 sum = 0;
            for (u32 a = mod[i].start; a < mod[i].end; a++) sum = sum * 31 + data[a - mod[i].start];
            puts("sum "); puthex(sum); putc('\n');
        }
    }
    if (mbi->flags & 64) {
        line("mmap_addr", mbi->mmap_addr);
        line("mmap_length", mbi->mmap_length);
        u32 at = mbi->mmap_addr, end = mbi->mmap_addr + mbi->mmap_length;
        while (at < end) {
            const u32 *e = (const u32 *)(unsigned long)at;
            u64 base = e[1] | ((u64)e[2] << 32), len = e[3] | ((u64)e[4] << 32);
            puts("mmap size "); puthex(e[0]); puts(" base "); puthex(base); puts(" length ");
            puthex(len); puts(" type "); putdec(e[5]); putc('\n');
            at += e[0] + 4;
        }
    }
    if (mbi->flags & 512) {
        puts("boot_loader_name \"");
        puts((const char *)(unsigned long)mbi->boot_loader_name);
        puts("\"\n");
    }
}

/* -- ACPI ---------------------------------------------------------------------- */

struct sdt { char sig[4]; u32 length; u8 revision, checksum; char oem[6], table[8]; u32 oemrev;
             char creator[4]; u32 creatorrev; } __attribute__((packed));

static u8 sum(const u8 *p, u32 n) { u8 s = 0; while (n--) s += *p++; return s; }

static const u8 *find_rsdp(void)
{
    for (unsigned long a = 0xe0000; a < 0x100000; a += 16) {
        const char *p = (const char *)a;
        if (p[0] == 'R' && p[1] == 'S' && p[2] == 'D' && p[3] == ' ' && p[4] == 'P' &&
            p[5] == 'T' && p[6] == 'R' && p[7] == ' ' && sum((const u8 *)p, 20) == 0)
            return (const u8 *)p;
    }
    return 0;
}

static void show_srat(const struct sdt *t)
{
    const u8 *p = (const u8 *)t + 48, *end = (const u8 *)t + t->length;
    while (p < end && p[1]) {
        if (p[0] == 0) {
            puts("srat cpu apic "); puthex(p[3]); puts(" node "); puthex(p[2]);
            puts(" flags "); puthex(*(const u32 *)(p + 4)); putc('\n');
        } else if (p[0] == 1) {
            const u32 *w = (const u32 *)(p + 8);
            puts("srat memory base "); puthex(w[0] | ((u64)w[1] << 32));
            puts(" length "); puthex(w[2] | ((u64)w[3] << 32));
            puts(" node "); puthex(*(const u32 *)(p + 2));
            puts(" flags "); puthex(*(const u32 *)(p + 28)); putc('\n');
        }
        p += p[1];
    }
}

static void show_acpi(void)
{
    const u8 *rsdp = find_rsdp();
    if (!rsdp) { puts("acpi none\n"); return; }
    puts("rsdp oem \""); putn((const char *)rsdp + 9, 6); puts("\" revision ");
    putdec(rsdp[15]); putc('\n');
    const struct sdt *rsdt = (const struct sdt *)(unsigned long)*(const u32 *)(rsdp + 16);
    u32 n = (rsdt->length - 36) / 4;
    const u32 *entries = (const u32 *)((const u8 *)rsdt + 36);
    puts("rsdt entries "); putdec(n);
    puts(sum((const u8 *)rsdt, rsdt->length) ? " checksum bad\n" : " checksum ok\n");
    for (u32 i = 0; i < n; i++) {
        const struct sdt *t = (const struct sdt *)(unsigned long)entries[i];
        puts("table "); putn(t->sig, 4); puts(" revision "); putdec(t->revision);
        puts(" oem \""); putn(t->oem, 6); puts("\" \""); putn(t->table, 8);
        puts(sum((const u8 *)t, t->length) ? "\" checksum bad\n" : "\" checksum ok\n");
        if (t->sig[0] == 'S' && t->sig[1] == 'R' && t->sig[2] == 'A' && t->sig[3] == 'T')
            show_srat(t);
        if (t->sig[0] == 'F' && t->sig[1] == 'A' && t->sig[2] == 'C' && t->sig[3] == 'P') {
            const struct sdt *dsdt = (const struct sdt *)(unsigned long)*(const u32 *)((const u8 *)t + 40);
            puts("table "); putn(dsdt->sig, 4); puts(" revision "); putdec(dsdt->revision);
            puts(sum((const u8 *)dsdt, dsdt->length) ? " checksum bad\n" : " checksum ok\n");
        }
    }
}

/* -- NVDIMMs -------------------------------------------------------------------- */

#define NVDIMM_DSM_PORT 0x0a18
#define NVDIMM_MAX 32
#define NVDIMM_GPE_BIT 0x10

static int sig_is(const struct sdt *t, const char *sig)
{
    return t->sig[0] == sig[0] && t->sig[1] == sig[1] && t->sig[2] == sig[2] && t->sig[3] == sig[3];
}

static const struct sdt *find_table(const char *sig, const char *table_id)
{
    const u8 *rsdp = find_rsdp();
    if (!rsdp) return 0;
    const struct sdt *rsdt = (const struct sdt *)(unsigned long)*(const u32 *)(rsdp + 16);
    const u32 *entries = (const u32 *)((const u8 *)rsdt + 36);
    for (u32 i = 0; i < (rsdt->length - 36) / 4; i++) {
        const struct sdt *t = (const struct sdt *)(unsigned long)entries[i];
        if (!sig_is(t, sig)) continue;
        int same = 1;
        for (int c = 0; table_id && table_id[c]; c++) same &= t->table[c] == table_id[c];
        if (same) return t;
    }
    return 0;
}

static volatile u8 *dsm_page;

/* One _DSM call the way the SSDT's NCAL makes it: handle, revision 1 and the
 * function into the page, then the arguments, then the page's address OUT to
 * the DSM port; the platform leaves the result's length (itself included) in
 * the page's first dword and the result after it.  Returns the result's length. */
static u32 dsm_call(u32 handle, u32 function, const u8 *args, u32 args_len)
{
    volatile u32 *words = (volatile u32 *)dsm_page;
    words[0] = handle;
    words[1] = 1;
    words[2] = function;
    for (u32 i = 0; i < args_len; i++) dsm_page[12 + i] = args[i];
    outl(NVDIMM_DSM_PORT, (u32)(unsigned long)dsm_page);
    return words[0] - 4;
}

static u32 dsm_word(u32 index) { return ((volatile u32 *)dsm_page)[1 + index]; }

static void put_bytes(u32 offset, u32 n)
{
    for (u32 i = 0; i < n; i++) {
        u8 b = dsm_page[offset + i];
        putc("0123456789abcdef"[b >> 4]); putc("0123456789abcdef"[b & 15]);
    }
}

static void label_rw(u32 handle, u32 offset, u32 length, const u8 *data)
{
    u8 args[8 + 64];
    *(u32 *)args = offset;
    *(u32 *)(args + 4) = length;
    if (data) {
        for (u32 i = 0; i < length; i++) args[8 + i] = data[i];
        u32 n = dsm_call(handle, 6, args, 8 + length);
        puts("nvdimm handle "); puthex(handle); puts(" write offset "); puthex(offset);
        puts(" length "); puthex(length); puts(" result "); putdec(n); puts(" status ");
        puthex(dsm_word(0)); putc('\n');
        return;
    }
    u32 n = dsm_call(handle, 5, args, 8);
    puts("nvdimm handle "); puthex(handle); puts(" read offset "); puthex(offset);
    puts(" length "); puthex(length); puts(" result "); putdec(n); puts(" status ");
    puthex(dsm_word(0));
    if (n > 4) { puts(" data "); put_bytes(8, n - 4); }
    putc('\n');
}

/* The NFIT's structures (the NFIT's body, or the FIT _FIT reads), one line each;
 * the memory-device handles go into `handles`. */
static void show_fit(const char *what, const u8 *fit, u32 fit_len, u32 *handles, u32 *count)
{
    for (u32 at = 0; at + 4 <= fit_len; ) {
        u16 type = *(const u16 *)(fit + at), len = *(const u16 *)(fit + at + 2);
        if (!len) break;
        const u8 *s = fit + at;
        puts(what);
        if (type == 0) {
            puts(" spa index "); putdec(*(const u16 *)(s + 4)); puts(" flags ");
            puthex(*(const u16 *)(s + 6)); puts(" node "); putdec(*(const u32 *)(s + 12));
            puts(" base "); puthex(*(const u64 *)(s + 32)); puts(" length ");
            puthex(*(const u64 *)(s + 40)); puts(" attributes "); puthex(*(const u64 *)(s + 48));
            putc('\n');
        } else if (type == 1) {
            puts(" map handle "); puthex(*(const u32 *)(s + 4)); puts(" spa ");
            putdec(*(const u16 *)(s + 12)); puts(" dcr "); putdec(*(const u16 *)(s + 14));
            puts(" length "); puthex(*(const u64 *)(s + 16)); puts(" flags ");
            puthex(*(const u16 *)(s + 44)); putc('\n');
            if (*count < NVDIMM_MAX) handles[(*count)++] = *(const u32 *)(s + 4);
        } else if (type == 4) {
            puts(" dcr index "); putdec(*(const u16 *)(s + 4)); puts(" vendor ");
            puthex(*(const u16 *)(s + 6)); puts(" serial "); puthex(*(const u32 *)(s + 24));
            puts(" fic "); puthex(*(const u16 *)(s + 28)); putc('\n');
        } else {
            puts(" type "); putdec(type); puts(" length "); putdec(len); putc('\n');
        }
        at += len;
    }
}

static u8 fit_copy[16384];

/* What _FIT does: Read FIT (QEMU's root function 1) from offset 0, piece by
 * piece, starting again if the FIT changed meanwhile (status 0x100). */
static void read_fit(void)
{
    u32 offset = 0, restarts = 0;
    for (;;) {
        u32 n = dsm_call(0x10000, 1, (const u8 *)&offset, 4);
        u32 status = dsm_word(0);
        if (status == 0x100) { offset = 0; restarts++; continue; }
        if (status != 0) { puts("nvdimm fit read status "); puthex(status); putc('\n'); return; }
        u32 got = n - 4;
        if (!got) break;
        for (u32 i = 0; i < got && offset + i < sizeof fit_copy; i++) fit_copy[offset + i] = dsm_page[8 + i];
        offset += got;
    }
    puts("nvdimm fit length "); putdec(offset); puts(" restarts "); putdec(restarts); putc('\n');
    u32 handles[NVDIMM_MAX], count = 0;
    show_fit("fit", fit_copy, offset, handles, &count);
}

static void show_nvdimms(void)
{
    const struct sdt *nfit = find_table("NFIT", 0);
    const struct sdt *ssdt = find_table("SSDT", "NVDIMM");
    if (!nfit) puts("nvdimm nfit none\n");
    if (!ssdt) { puts("nvdimm ssdt none\n"); return; }
    /* Name (MEMA, 0xADDR) at the SSDT's end: the page the firmware allocated */
    const u8 *p = (const u8 *)ssdt, *end = p + ssdt->length;
    for (const u8 *q = p + 36; q + 10 <= end; q++)
        if (q[0] == 0x08 && q[1] == 'M' && q[2] == 'E' && q[3] == 'M' && q[4] == 'A' && q[5] == 0x0c)
            dsm_page = (volatile u8 *)(unsigned long)*(const u32 *)(q + 6);
    puts(dsm_page ? "nvdimm dsm page found\n" : "nvdimm dsm page none\n");
    if (!dsm_page) return;
    u32 handles[NVDIMM_MAX], count = 0;
    u32 fit_len = nfit ? nfit->length - 40 : 0;
    const u8 *fit = nfit ? (const u8 *)nfit + 40 : 0;
    show_fit("nfit", fit, fit_len, handles, &count);
    u32 n = dsm_call(0, 0, 0, 0);
    puts("nvdimm root functions result "); putdec(n); puts(" "); puthex(dsm_word(0)); putc('\n');
    n = dsm_call(0x10000, 0, 0, 0);
    puts("nvdimm qemu functions result "); putdec(n); puts(" "); puthex(dsm_word(0)); putc('\n');
    u8 zero[4] = {0, 0, 0, 0};
    n = dsm_call(0x10000, 1, zero, 4);
    int same = n == 4 + fit_len;
    for (u32 i = 0; same && i < fit_len; i++) same = dsm_page[8 + i] == fit[i];
    puts("nvdimm read fit result "); putdec(n); puts(" status "); puthex(dsm_word(0));
    puts(same ? " same as nfit\n" : " differs from nfit\n");
    static const u8 record[16] = "pyqom-label-0001";
    for (u32 i = 0; i < count; i++) {
        u32 h = handles[i];
        n = dsm_call(h, 0, 0, 0);
        puts("nvdimm handle "); puthex(h); puts(" functions "); puthex(dsm_word(0)); putc('\n');
        n = dsm_call(h, 4, 0, 0);
        puts("nvdimm handle "); puthex(h); puts(" label size result "); putdec(n);
        puts(" status "); puthex(dsm_word(0));
        if (n >= 12) { puts(" size "); puthex(dsm_word(1)); puts(" max "); puthex(dsm_word(2)); }
        putc('\n');
        if (dsm_word(0) != 0) continue;
        u32 label_size = dsm_word(1);
        label_rw(h, 0x40, 16, 0);
        label_rw(h, 0x40, 16, record);
        label_rw(h, 0x40, 16, 0);
        label_rw(h, label_size - 8, 16, 0);       /* past the end: invalid */
    }
    n = dsm_call(count + 1, 4, 0, 0);
    puts("nvdimm handle "); puthex(count + 1); puts(" label size result "); putdec(n);
    puts(" status "); puthex(dsm_word(0)); putc('\n');
}

/* -- memory hotplug --------------------------------------------------------------- */

enum { MHP_ADDR_LO = 0, MHP_ADDR_HI = 4, MHP_SIZE_LO = 8, MHP_SIZE_HI = 0xc, MHP_NODE = 0x10,
       MHP_STATUS = 0x14 };
enum { MHP_SEL = 0, MHP_OST_EVENT = 4, MHP_OST_STATUS = 8, MHP_CTRL = 0x14 };
enum { ST_ENABLED = 1, ST_INSERT = 2, ST_REMOVE = 4 };
enum { CTRL_CLEAR_INSERT = 2, CTRL_CLEAR_REMOVE = 4, CTRL_EJECT = 8 };

static void ost(u32 slot, u32 event, u32 status)
{
    outl(MHP_BASE + MHP_SEL, slot);
    outl(MHP_BASE + MHP_OST_EVENT, event);
    outl(MHP_BASE + MHP_OST_STATUS, status);
    puts("ost slot "); putdec(slot); puts(" event "); puthex(event); puts(" status ");
    puthex(status); putc('\n');
}

/* A test of the new memory: a pattern at every 64 KiB step, read back. */
static int test_memory(u64 base, u64 size)
{
    for (u64 a = base; a < base + size; a += 0x10000) *(volatile u64 *)a = a ^ 0x5a5a5a5a5a5a5a5aULL;
    for (u64 a = base; a < base + size; a += 0x10000)
        if (*(volatile u64 *)a != (a ^ 0x5a5a5a5a5a5a5a5aULL)) return 0;
    return 1;
}

/* A store loop: `mib` MiB of qwords from `base`, `rounds` times. */
static void store_loop(u64 base, u64 mib, u64 rounds)
{
    for (u64 r = 0; r < rounds; r++)
#pragma GCC unroll 8
        for (volatile u64 *p = (volatile u64 *)base; p < (volatile u64 *)(base + (mib << 20)); p++)
            *p = (u64)p + r;
}

static void bench(const char *what, u64 base, u64 mib)
{
    store_loop(base, mib, 1);                    /* first touch, not timed */
    puts("bench "); puts(what); puts(" begin\n");
    store_loop(base, mib, 1);
    puts("bench "); puts(what); puts(" end\n");
}

static int slots_seen;

static int hotplug_block;   /* the 0x0a00 block answers (an absent one reads all ones) */

static void show_slots(void)
{
    int present = 0;
    outl(MHP_BASE + MHP_SEL, 0);
    hotplug_block = inb(MHP_BASE + MHP_STATUS) != 0xff;
    if (!hotplug_block) { puts("memory hotplug block none\n"); return; }
    for (u32 slot = 0; slot < MAX_SLOTS; slot++) {
        outl(MHP_BASE + MHP_SEL, slot);
        u8 status = inb(MHP_BASE + MHP_STATUS);
        if (!(status & ST_ENABLED)) continue;
        present++;
        u64 addr = inl(MHP_BASE + MHP_ADDR_LO) | ((u64)inl(MHP_BASE + MHP_ADDR_HI) << 32);
        u64 size = inl(MHP_BASE + MHP_SIZE_LO) | ((u64)inl(MHP_BASE + MHP_SIZE_HI) << 32);
        puts("slot "); putdec(slot); puts(" addr "); puthex(addr); puts(" size "); puthex(size);
        puts(" node "); putdec(inl(MHP_BASE + MHP_NODE)); puts(" status "); puthex(status);
        putc('\n');
    }
    puts("slots present "); putdec((u64)present); putc('\n');
    slots_seen = present;
}

static int handle_events(void)
{
    int events = 0;
    int fail = option("ost-fail", 0), never_online = option("never-online", 0);
    int never_eject = option("never-eject", 0);
    for (u32 slot = 0; slot < MAX_SLOTS; slot++) {
        outl(MHP_BASE + MHP_SEL, slot);
        u8 status = inb(MHP_BASE + MHP_STATUS);
        if (status & ST_INSERT) {
            events++;
            u64 addr = inl(MHP_BASE + MHP_ADDR_LO) | ((u64)inl(MHP_BASE + MHP_ADDR_HI) << 32);
            u64 size = inl(MHP_BASE + MHP_SIZE_LO) | ((u64)inl(MHP_BASE + MHP_SIZE_HI) << 32);
            puts("insert slot "); putdec(slot); puts(" addr "); puthex(addr); puts(" size ");
            puthex(size); puts(" node "); putdec(inl(MHP_BASE + MHP_NODE)); putc('\n');
            outl(MHP_BASE + MHP_CTRL, CTRL_CLEAR_INSERT);
            if (fail || never_online) {
                puts("offline slot "); putdec(slot); putc('\n');
                ost(slot, 0x1, 0x1);                  /* device check: failure */
            } else {
                int ok = test_memory(addr, size);
                u64 mib = 0;
                if (ok && option("bench", &mib)) bench("dimm", addr, size >> 20);
                puts(ok ? "online slot " : "memory test failed slot "); putdec(slot); putc('\n');
                ost(slot, 0x1, ok ? 0x0 : 0x1);
            }
        }
        if (status & ST_REMOVE) {
            events++;
            puts("remove slot "); putdec(slot); putc('\n');
            if (never_eject) {
                puts("ignored slot "); putdec(slot); putc('\n');
                continue;
            }
            outl(MHP_BASE + MHP_CTRL, CTRL_CLEAR_REMOVE);
            if (fail) { ost(slot, 0x103, 0x1); continue; }  /* eject request: failure */
            ost(slot, 0x103, 0x84);   /* ejection in progress (ACPI: 0x80 is "not supported") */
            outl(MHP_BASE + MHP_SEL, slot);
            outl(MHP_BASE + MHP_CTRL, CTRL_EJECT);
            puts("ejected slot "); putdec(slot); putc('\n');
        }
    }
    return events;
}

/* -- interrupts ------------------------------------------------------------ */

#define PIC_VECTOR_BASE 0x20
#define SCI_IRQ 9

struct gate { u16 offset_low, selector; u8 ist, type; u16 offset_mid; u32 offset_high, zero; }
    __attribute__((packed));
static struct gate idt[256] __attribute__((aligned(16)));
extern char interrupt_stubs[];
static volatile u32 sci_count;

/* Called from the stubs with the vector: the SCI is acknowledged at the 8259s;
 * anything else is unexpected, and the guest stops there. */
void interrupt(u64 vector)
{
    if (vector == PIC_VECTOR_BASE + SCI_IRQ) {
        sci_count++;
        outb(0xa0, 0x20);                 /* EOI: slave, then master */
        outb(0x20, 0x20);
        return;
    }
    puts("unexpected interrupt "); puthex(vector); putc('\n');
    for (;;) __asm__ volatile("cli; hlt");
}

static void setup_interrupts(void)
{
    for (int v = 0; v < 256; v++) {
        u64 handler = (u64)(unsigned long)(interrupt_stubs + 16 * v);
        idt[v] = (struct gate){ (u16)handler, 0x08, 0, 0x8e, (u16)(handler >> 16),
                                (u32)(handler >> 32), 0 };
    }
    struct { u16 limit; u64 base; } __attribute__((packed)) idtr =
        { sizeof idt - 1, (u64)(unsigned long)idt };
    __asm__ volatile("lidt %0" :: "m"(idtr));
    /* 8259s: ICW1-ICW4, vectors 0x20 and 0x28, then only the cascade and IRQ 9 */
    outb(0x20, 0x11); outb(0xa0, 0x11);
    outb(0x21, PIC_VECTOR_BASE); outb(0xa1, PIC_VECTOR_BASE + 8);
    outb(0x21, 0x04); outb(0xa1, 0x02);
    outb(0x21, 0x01); outb(0xa1, 0x01);
    outb(0x21, (u8)~0x04); outb(0xa1, (u8)~(1 << (SCI_IRQ - 8)));
    outw(GPE0_EN, MHP_GPE_BIT);           /* the memory-hotplug GPE raises the SCI */
    puts("sci enabled\n");
}

#define PM1A_STS 0x600
#define PM1A_EN 0x602
#define PWRBTN 0x0100
#define PM_TMR 0x608
#define PM1A_CNT 0x604
#define SLP_EN 0x2000

static int power_button_enabled;

/* A pressed power button (PM1 status) powers the machine off. */
static void power_button(void)
{
    if (!power_button_enabled || !(inw(PM1A_STS) & PWRBTN)) return;
    outw(PM1A_STS, PWRBTN);
    puts("power button\npoweroff\n");
    outw(PM1A_CNT, SLP_EN);
}

/* The ACPI PM timer (3.579545 MHz, 24 bits) must move. */
static void show_pm_timer(void)
{
    u32 first = inl(PM_TMR) & 0xffffff, now = first;
    for (int i = 0; i < 1000000 && now == first; i++) now = inl(PM_TMR) & 0xffffff;
    puts(now != first ? "pm timer counts\n" : "pm timer stopped\n");
}

static void debug_exit(u64 value)
{
    puts("exit "); puthex(value); putc('\n');
    outb(DEBUG_EXIT, (u8)value);
}

void kmain(u32 magic, u32 info)
{
    puts("pyqom-guest 1\n");
    show_multiboot(magic, (const struct mb_info *)(unsigned long)info);
    show_acpi();
    if (option("nvdimm", 0)) show_nvdimms();
    show_slots();
    u64 mib = 0;
    if (option("bench", &mib)) bench("ram", 32 << 20, mib);
    show_pm_timer();
    u64 value = 0;
    if (option("exit", &value)) debug_exit(value);
    if (option("powerbutton", 0)) {
        outw(PM1A_EN, PWRBTN);
        power_button_enabled = 1;
        puts("power button enabled\n");
    }
    if (option("poweroff", 0)) {
        puts("poweroff\n");
        outw(PM1A_CNT, SLP_EN);                   /* sleep type 0: the DSDT's \\_S5 */
        puts("still running after poweroff\n");
    }
    if (option("spin", 0)) { puts("spinning\n"); for (;;) store_loop(16 << 20, 16, 1); }
    if (option("hammer", 0)) {
        puts("hammering\n");
        for (;;) (void)inb(MHP_BASE + MHP_STATUS);
    }
    u64 limit = 0;
    int counting = option("events", &limit);
    u64 seen = 0;
    int by_sci = option("sci", 0) && hotplug_block;
    if (by_sci) setup_interrupts();
    puts("ready\n");
    while (by_sci) {
        __asm__ volatile("sti; hlt; cli");
        if (!sci_count) continue;
        sci_count = 0;
        puts("sci\n");
        power_button();
        outw(GPE0_STS, MHP_GPE_BIT);
        seen += (u64)handle_events();
        if (counting && seen >= limit) debug_exit(0x10);
    }
    int nvdimm = option("nvdimm", 0) && dsm_page;
    for (;;) {
        power_button();
        if (nvdimm && (inw(GPE0_STS) & NVDIMM_GPE_BIT)) {
            outw(GPE0_STS, NVDIMM_GPE_BIT);
            puts("nvdimm hotplug event\n");
            read_fit();
        }
        if (hotplug_block && (inw(GPE0_STS) & MHP_GPE_BIT)) {
            outw(GPE0_STS, MHP_GPE_BIT);                 /* clear before scanning */
            seen += (u64)handle_events();
            if (counting && seen >= limit) debug_exit(0x10);
        }
        __asm__ volatile("pause");
    }
}
