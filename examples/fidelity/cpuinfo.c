/* Looks for NEON in /proc/cpuinfo, as feature detection often does: under qemu-user 7.2 the file
 * describes the host's x86 CPU (vendor_id, no neon); getauxval(AT_HWCAP) has the target's. */
#include <stdio.h>
#include <string.h>
int main(void) {
    FILE *f = fopen("/proc/cpuinfo", "r"); char line[512]; int neon = 0, x86 = 0;
    if (!f) return 2;
    while (fgets(line, sizeof line, f)) { if (strstr(line, "neon")) neon = 1; if (strstr(line, "vendor_id")) x86 = 1; }
    printf("cpuinfo: neon=%d x86=%d\n", neon, x86);
    return neon ? 0 : 1;
}
