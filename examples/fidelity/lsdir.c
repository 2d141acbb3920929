/* Lists a directory with the 32-bit readdir() interface (no _FILE_OFFSET_BITS=64, as a 32-bit
 * program built without large-file support does). Under qemu-user in a directory of the host's
 * ext4 it fails with EOVERFLOW ("Value too large for defined data type"): ext4 gives the 64-bit
 * qemu process 64-bit directory offsets. On a board, and in a tmpfs (podrepro run --tmpfs-tree),
 * it lists the directory. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    const char *d = argc > 1 ? argv[1] : ".";
    DIR *dir = opendir(d);
    if (!dir) { printf("opendir %s: %s\n", d, strerror(errno)); return 2; }
    int n = 0; struct dirent *e;
    errno = 0;
    while ((e = readdir(dir)) != NULL) n++;
    if (errno) { printf("readdir %s: %s (after %d entries)\n", d, strerror(errno), n); return 1; }
    printf("%d entries in %s\n", n, d);
    closedir(dir);
    return 0;
}
