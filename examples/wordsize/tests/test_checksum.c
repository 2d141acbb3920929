#include <stdio.h>
#include "wordsize.h"

int main(void)
{
    /* FNV-1a 64 of "podrepro", computed with 64-bit arithmetic */
    const unsigned long long want = 0xf9a133e7c601bb60ULL;
    unsigned long long got = checksum64("podrepro");
    printf("checksum64(\"podrepro\") = %#llx, want %#llx (sizeof(long) = %zu)\n", got, want, sizeof(long));
    return got == want ? 0 : 1;
}
