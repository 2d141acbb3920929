#define _DEFAULT_SOURCE
#include <time.h>
#include "wordsize.h"

/* BUG (portability): a 32-bit time_t (Debian 12 armhf/mipsel) overflows after 2038-01-19,
 * so any date past it comes out wrong. The fix is 64-bit arithmetic or _TIME_BITS=64. */
long days_since_2000(int year, int month, int day)
{
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    time_t t = timegm(&tm);
    return (long)((t - (time_t)946684800) / 86400);
}
