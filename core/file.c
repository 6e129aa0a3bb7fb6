/*
 * file.c — rk_delete_paced (file.h). Any thread that may sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"

static void pause_us(uint32_t us)
{
	struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Shortens fd to nothing but its first step, a step at a time. Best effort: the
 * unlink after it frees whatever a failed step left. */
static void shorten_paced(int fd, const struct rk_delete_pace *pace)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
		return;
	uint64_t size = (uint64_t)st.st_size;
	while (size > pace->step_bytes) {
		size -= pace->step_bytes;
		if (ftruncate(fd, (off_t)size) < 0 || fdatasync(fd) < 0)
			return;
		pause_us(pace->pause_us);
	}
}

int rk_delete_paced(int dir_fd, const char *name, const char *doomed_name, const struct rk_delete_pace *pace)
{
	if (renameat(dir_fd, name, dir_fd, doomed_name) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fsync(dir_fd) < 0)
		return -errno;
	if (pace->step_bytes > 0) {
		/* Not a regular file (a link, a FIFO: O_NONBLOCK, or its open would wait for
		 * a reader): not opened or not shortened, just unlinked. */
		int fd = openat(dir_fd, doomed_name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd >= 0) {
			shorten_paced(fd, pace);
			close(fd);
		}
	}
	if (unlinkat(dir_fd, doomed_name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 1;
}
