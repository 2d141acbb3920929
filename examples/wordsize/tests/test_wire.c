#include <stdio.h>
#include "wordsize.h"

int main(void)
{
    const unsigned char frame[] = {0x05, 0x00, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o'};
    unsigned long got = wire_length(frame);
    printf("wire_length = %lu, want 5\n", got);
    return got == 5 ? 0 : 1;
}
