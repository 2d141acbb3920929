#include <string.h>
#include "wordsize.h"

/* BUG (portability): copies the bytes into a native integer, which is only right on
 * little-endian hosts. s390x (big-endian) decodes 5 as 83886080. The fix is to assemble
 * the value from bytes: buf[0] | buf[1] << 8 | ... */
uint32_t wire_length(const unsigned char *buf)
{
    uint32_t v;
    memcpy(&v, buf, sizeof v);
    return v;
}
