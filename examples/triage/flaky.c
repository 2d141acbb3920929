/* Fails at random about a third of the time (one random byte, 86 of its 256 values):
 * podrepro test ARCH --repeat 20 --filter flaky estimates the rate with its interval. */
#include <stdio.h>

int main(void)
{
    FILE *f = fopen("/dev/urandom", "rb");
    int b = f ? fgetc(f) : -1;
    if (f)
        fclose(f);
    if (b < 0)
        return 2;
    if (b % 3 == 0) {
        printf("flaky: unlucky byte %d\n", b);
        return 1;
    }
    printf("flaky: ok (%d)\n", b);
    return 0;
}
