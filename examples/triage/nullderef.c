/* Writes through a NULL pointer: SIGSEGV on every architecture, the program's own signal. */
#include <stdio.h>

static void store(int *p, int v) { *p = v; }

int main(int argc, char **argv)
{
    int *target = argc > 99 ? (int *)argv : NULL; /* NULL, without the compiler knowing */
    store(target, 42);
    printf("stored\n");
    return 0;
}
