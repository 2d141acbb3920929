/* The seed's smoke test: compile and run it inside an emulated container.
 *   podrepro run arm -- sh -c 'gcc -O2 -o /tmp/factorial factorial.c && /tmp/factorial'
 * prints "Result: 2432902008176640000" (20!) on every architecture. */
#include <stdio.h>

static unsigned long long factorial(unsigned int n)
{
    return n <= 1 ? 1ULL : n * factorial(n - 1);
}

int main(void)
{
    printf("Result: %llu\n", factorial(20));
    return 0;
}
