/* Attaches to its child with ptrace(2): qemu-user implements no ptrace (ENOSYS). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
#include <signal.h>
int main(void) {
    pid_t c = fork();
    if (c == 0) { pause(); _exit(0); }
    long r = ptrace(PTRACE_ATTACH, c, 0, 0);
    int e = errno;
    kill(c, SIGKILL); waitpid(c, 0, 0);
    if (r < 0) { printf("ptrace: %s\n", strerror(e)); return 1; }
    printf("ptrace: attached\n");
    return 0;
}
