/*
 * sentinel.c — a process that shuts the server's sockets down when the server dies
 * (sentinel.h says why). It calls nothing that allocates or locks: it is a raw
 * clone of a single-threaded process, and runs on syscalls alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/sentinel.h"

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int parse_fd(const char *s)
{
	int fd = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || fd > 100000000)
			return -1;
		fd = fd * 10 + (*s - '0');
	}
	return fd;
}

/* Every socket in the (shared) file table, shut down both ways. */
static void shutdown_sockets(void)
{
	int dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return;
	char buf[8192] __attribute__((aligned(8)));
	long n;
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
			off += d->d_reclen;
			int fd = parse_fd(d->d_name);
			struct stat st;
			if (fd < 0 || fd == dir || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
				continue;
			shutdown(fd, SHUT_RDWR);
		}
	}
	close(dir);
}

static void __attribute__((noreturn)) sentinel_main(int pidfd)
{
	prctl(PR_SET_NAME, "rk-sentinel", 0, 0, 0);
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	shutdown_sockets();
	_exit(0); /* the file table's last holder: every file closes */
}

pid_t rk_sentinel_start(void)
{
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0)
		return -errno;
	/* Like fork (a copy of this single-threaded process, its own stack), but sharing
	 * the file table. */
	long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0) {
		int err = errno;
		close(pidfd);
		return -err;
	}
	if (pid == 0)
		sentinel_main(pidfd);
	/* The pidfd stays in the shared table for the sentinel (closing it here would
	 * close it there too). */
	return (pid_t)pid;
}
