#include <stdio.h>
#include <time.h>
#include "wordsize.h"

int main(void)
{
    long got = days_since_2000(2040, 1, 1);
    const long want = 14610;
    printf("days_since_2000(2040-01-01) = %ld, want %ld (sizeof(time_t) = %zu)\n", got, want, sizeof(time_t));
    return got == want ? 0 : 1;
}
