/* An unchecked allocation that only fails where the address space is 32 bits wide.
 *
 * On x86_64 (and arm64), malloc(3 GiB) succeeds (the kernel overcommits; only the pages
 * touched are ever backed), so the program prints "ok". A 32-bit process has 4 GiB of address
 * space in all, minus the program, its libraries and its stack: malloc returns NULL, nobody
 * checks, and fill_buffer writes through the NULL pointer: SIGSEGV, on arm and mips alike.
 *
 *   podrepro build arm
 *   podrepro run --core arm -- build-podrepro-arm/bigbuf     # segfaults, keeps the core
 *   podrepro debug arm --core .podrepro/cores/arm/qemu_bigbuf_*.core --batch -ex bt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_BYTES (3ULL << 30) /* 3 GiB */

static void fill_buffer(unsigned char *buf, size_t len)
{
    memset(buf, 0xA5, len < 4096 ? len : 4096); /* only the first page is touched */
}

int main(void)
{
    size_t len = (size_t)FRAME_BYTES; /* on 32-bit, 3 GiB still fits in a size_t... */
    unsigned char *buf = malloc(len); /* ...but not in the address space: NULL, unchecked */
    fill_buffer(buf, len);
    printf("ok: %zu bytes at %p\n", len, (void *)buf);
    free(buf);
    return 0;
}
