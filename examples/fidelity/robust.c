/* A process-shared robust mutex whose owner dies holding it: the next lock returns EOWNERDEAD on
 * Linux. qemu-user refuses set_robust_list, so the kernel never releases it: no EOWNERDEAD. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
static void timeout(int s) { (void)s; printf("robust mutex: the dead owner's lock never came back (no EOWNERDEAD)\n"); _exit(1); }
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_mutex_t *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(m, &a);
    if (rc) { printf("robust mutex init: %s\n", strerror(rc)); return 1; }
    pid_t c = fork();
    if (c == 0) { pthread_mutex_lock(m); _exit(0); }   /* dies holding it */
    waitpid(c, NULL, 0);
    signal(SIGALRM, timeout); alarm(5);
    rc = pthread_mutex_lock(m);
    printf("robust mutex: lock after the owner died: %s\n", rc == EOWNERDEAD ? "EOWNERDEAD" : strerror(rc));
    return rc == EOWNERDEAD ? 0 : 1;
}
