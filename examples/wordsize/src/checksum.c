#include "wordsize.h"

/* BUG (portability): `unsigned long` is only 32 bits on ILP32 targets (armhf, mipsel, i386),
 * so the 64-bit FNV-1a hash silently wraps. The fix is uint64_t. */
unsigned long checksum64(const char *s)
{
    unsigned long h = (unsigned long)14695981039346656037ULL;
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= (unsigned long)1099511628211ULL;
    }
    return h;
}
