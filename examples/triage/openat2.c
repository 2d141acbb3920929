/* Opens its directory with openat2(2) (Linux 5.6), refusing symbolic links on the way, as
 * sandboxes and container tools do. Every kernel podrepro runs on has openat2, natively or on a
 * board; qemu-user 7.2 (Debian bookworm's) does not emulate it and answers ENOSYS ("Unknown
 * syscall 437" in its trace): the program fails only under qemu-user, a suspected emulator issue. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

int main(void)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_DIRECTORY;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH;
    long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
    if (fd < 0) {
        printf("openat2: %s\n", strerror(errno));
        return 1;
    }
    printf("openat2: opened . (fd %ld)\n", fd);
    close((int)fd);
    return 0;
}
