/*
 * podrepro binfmt shim: register a private binfmt_misc handler, then exec the real command.
 *
 * Used as the container entrypoint (podrepro bind-mounts it read-only, statically linked, so it
 * runs in any image). Linux >= 6.7 lets a user namespace mount its own binfmt_misc instance, and
 * exec() uses the first instance found walking from the caller's user namespace up to the host's.
 * An instance that exists but has no matching entry does NOT fall back to the host's entries, and
 * it lives as long as its user namespace. So the instance must sit in a user namespace that belongs
 * to this one container: we create one (never podman's shared rootless namespace, where an empty
 * instance would break every container of the user until the pause process restarts).
 *
 *   binfmt-shim [-m DIR] [-r LINE]... [-u UID -g GID [-G GID,GID...]] -- CMD [ARG...]
 *
 *   -m DIR   where to mount the private binfmt_misc (default /proc/sys/fs/binfmt_misc, so tools
 *            inside find it where they expect it); it stays mounted: the kernel drops an
 *            instance's entries when its last mount goes away
 *   -r LINE  a binfmt_misc register line (":name:M:off:magic:mask:/interp:flags"); with flag F the
 *            kernel opens the interpreter now, so it must be visible here (bind-mounted read-only)
 *   -u/-g/-G the user to become before exec (podman must start us as root for the identity map:
 *            only root of the container's namespace may map every uid)
 *
 * Steps: fork a helper (it must stay in the container's user namespace to write our maps), then
 * unshare(CLONE_NEWUSER|CLONE_NEWNS); the helper writes an identity uid/gid map copied from the
 * container's own maps (every container uid stays valid: chown, su, apt's _apt), exits, and is
 * reaped; mount binfmt_misc, register, restore the capability bounding set the container had
 * (a new user namespace starts with a full one), drop to -u/-g, exec. Nothing lingers: the command
 * replaces this process, so its exit status and signals are the container's.
 *
 * Exit codes of the shim itself: 125 setup failed (like podman's own errors), 126 command found
 * but not executable, 127 command not found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG "podrepro-binfmt-shim"
#define EXIT_SETUP 125
#define MAX_LINES 64
#define MAX_GROUPS 64
#define MAP_MAX 8192

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    int e = errno;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (e)
        fprintf(stderr, ": %s (errno %d)", strerror(e), e);
    fputc('\n', stderr);
    _exit(EXIT_SETUP);
}

static int read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n, total = 0;
    while ((n = read(fd, buf + total, size - 1 - (size_t)total)) > 0)
        total += n;
    close(fd);
    if (n < 0)
        return -1;
    buf[total] = '\0';
    return 0;
}

static int write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(data);
    ssize_t n = write(fd, data, len);
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)len ? 0 : -1;
}

/* "inside outside count" lines of our own map -> "inside inside count": identity for every id the
 * container has, so the new namespace sees exactly the ids (and file owners) the container sees. */
static void identity_map(const char *self_map, char *out, size_t size)
{
    char src[MAP_MAX];
    if (read_file(self_map, src, sizeof src) != 0)
        die("read %s", self_map);
    out[0] = '\0';
    size_t used = 0;
    for (char *save = NULL, *ln = strtok_r(src, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        unsigned long inside, outside, count;
        if (sscanf(ln, "%lu %lu %lu", &inside, &outside, &count) != 3)
            continue;
        int w = snprintf(out + used, size - used, "%lu %lu %lu\n", inside, inside, count);
        if (w < 0 || (size_t)w >= size - used) {
            errno = 0;
            die("%s: too many lines", self_map);
        }
        used += (size_t)w;
    }
}

/* The helper: still in the container's user namespace (where it has CAP_SETUID/CAP_SETGID as
 * container root), it waits until the parent has unshared, then writes the parent's maps. */
static void map_writer(pid_t parent, int ready_fd, const char *uid_map, const char *gid_map)
{
    char c, path[64];
    if (read(ready_fd, &c, 1) != 1)
        _exit(1); /* parent failed before unshare; it reports */
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)parent);
    if (write_file(path, gid_map) != 0)
        die("write %s (the container must start as root: podman --user 0:0)", path);
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)parent);
    if (write_file(path, uid_map) != 0)
        die("write %s (the container must start as root: podman --user 0:0)", path);
    _exit(0);
}

static unsigned long parse_id(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v > 0xfffffffeUL) {
        errno = 0;
        die("invalid %s %s", what, s);
    }
    return v;
}

static int last_cap(void)
{
    char buf[32];
    if (read_file("/proc/sys/kernel/cap_last_cap", buf, sizeof buf) == 0)
        return atoi(buf);
    int c = 0;
    while (prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
        c++;
    return c;
}

/* execvp without its "run it with /bin/sh" retry on ENOEXEC: a foreign binary with no handler
 * must fail as "Exec format error" (as runc reports it), not as a misleading "/bin/sh: not found".
 * Returns the errno that explains the failure (EACCES if any candidate had it, like execvp). */
static int exec_path(char **cmd)
{
    extern char **environ;
    if (strchr(cmd[0], '/')) {
        execve(cmd[0], cmd, environ);
        return errno;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int seen_eacces = 0, e = ENOENT;
    char buf[4096];
    for (const char *p = path;; p++) {
        const char *start = p;
        while (*p && *p != ':')
            p++;
        size_t dlen = (size_t)(p - start);
        if (dlen == 0)
            dlen = 1, start = ".";
        if (dlen + 1 + strlen(cmd[0]) + 1 <= sizeof buf) {
            memcpy(buf, start, dlen);
            buf[dlen] = '/';
            strcpy(buf + dlen + 1, cmd[0]);
            execve(buf, cmd, environ);
            e = errno;
            if (e == EACCES)
                seen_eacces = 1;
            else if (e != ENOENT && e != ENOTDIR)
                return e; /* found but unrunnable (e.g. ENOEXEC): stop, as execvp does */
        }
        if (!*p)
            break;
    }
    return seen_eacces ? EACCES : e;
}

int main(int argc, char **argv)
{
    const char *mnt = "/proc/sys/fs/binfmt_misc";
    const char *lines[MAX_LINES];
    int nlines = 0;
    long uid = -1, gid = -1;
    gid_t groups[MAX_GROUPS];
    int ngroups = -1;
    int opt;

    /* '+': stop at the first non-option, so the command's own options are never ours */
    while ((opt = getopt(argc, argv, "+m:r:u:g:G:")) != -1) {
        switch (opt) {
        case 'm': mnt = optarg; break;
        case 'r':
            if (nlines == MAX_LINES) { errno = 0; die("too many -r"); }
            lines[nlines++] = optarg;
            break;
        case 'u': uid = (long)parse_id(optarg, "uid"); break;
        case 'g': gid = (long)parse_id(optarg, "gid"); break;
        case 'G': {
            ngroups = 0;
            char *copy = strdup(optarg), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (ngroups == MAX_GROUPS) { errno = 0; die("too many groups"); }
                groups[ngroups++] = (gid_t)parse_id(t, "group");
            }
            break;
        }
        default:
            errno = 0;
            die("usage: binfmt-shim [-m DIR] [-r LINE]... [-u UID -g GID [-G GIDS]] -- CMD [ARG...]");
        }
    }
    if (optind >= argc) {
        errno = 0;
        die("no command given");
    }
    if ((uid < 0) != (gid < 0)) {
        errno = 0;
        die("-u and -g go together");
    }

    /* The container's capability bounding set, to restore after unshare (a new user namespace
     * gets a full one, and exec'ing as root would then hand every capability to the command). */
    int lastcap = last_cap();
    unsigned long long bset = 0;
    for (int c = 0; c <= lastcap && c < 64; c++)
        if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
            bset |= 1ULL << c;

    static char uid_map[MAP_MAX], gid_map[MAP_MAX];
    identity_map("/proc/self/uid_map", uid_map, sizeof uid_map);
    identity_map("/proc/self/gid_map", gid_map, sizeof gid_map);

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        die("pipe");
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(pfd[1]);
        map_writer(parent, pfd[0], uid_map, gid_map);
    }
    close(pfd[0]);
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        die("unshare(CLONE_NEWUSER|CLONE_NEWNS) (seccomp or user.max_user_namespaces may forbid it)");
    if (write(pfd[1], "x", 1) != 1)
        die("signal map writer");
    close(pfd[1]);
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = 0;
        die("could not write the uid/gid maps of the private user namespace");
    }

    /* mounts made in here must never propagate back into the container's namespace */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die("make / private");
    if (mount("binfmt_misc", mnt, "binfmt_misc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        die("mount binfmt_misc on %s (needs Linux >= 6.7)", mnt);
    char reg[4096];
    if ((size_t)snprintf(reg, sizeof reg, "%s/register", mnt) >= sizeof reg) {
        errno = 0;
        die("mount point path too long");
    }
    for (int i = 0; i < nlines; i++)
        if (write_file(reg, lines[i]) != 0)
            die("register %s", lines[i]);

    for (int c = 0; c <= lastcap; c++)
        if (c >= 64 || !(bset & (1ULL << c)))
            if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0)
                die("drop capability %d from the bounding set", c);

    if (uid >= 0) {
        if (ngroups < 0) {
            groups[0] = (gid_t)gid;
            ngroups = 1;
        }
        if (setgroups((size_t)ngroups, groups) != 0)
            die("setgroups");
        if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0)
            die("setresgid %ld", gid);
        /* from root to non-root: permitted and effective capabilities are cleared, as podman does */
        if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0)
            die("setresuid %ld", uid);
    }

    char **cmd = argv + optind;
    int e = exec_path(cmd);
    fprintf(stderr, PROG ": exec %s: %s\n", cmd[0], strerror(e));
    return e == ENOENT || e == ENOTDIR ? 127 : 126;
}
