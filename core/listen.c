/*
 * listen.c — binds that wait out a port held by a server killed just before
 * (listen.h says why it is held).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/listen.h"
#include "core/log.h"

int rk_bind_listen(int fd, const struct sockaddr *sa, socklen_t sa_len, int backlog, const char *what)
{
	int64_t deadline = rk_now_us() + (int64_t)RK_LISTEN_WAIT_MS * 1000;
	bool told = false;
	while (bind(fd, sa, sa_len) < 0) {
		if (errno != EADDRINUSE || rk_now_us() >= deadline)
			return -errno;
		if (!told) {
			log_warn("%s: the port is in use; trying again for up to %d s (a server killed just before "
				 "keeps its sockets a few ms after it is gone)",
				 what, RK_LISTEN_WAIT_MS / 1000);
			told = true;
		}
		struct timespec ts = { 0, RK_LISTEN_RETRY_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (told)
		log_info("%s: the port is free", what);
	if (backlog >= 0 && listen(fd, backlog) < 0)
		return -errno;
	return 0;
}

int rk_port_claim(const struct sockaddr *sa, socklen_t sa_len, const char *what)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	int rc = rk_bind_listen(fd, sa, sa_len, -1, what);
	close(fd);
	return rc;
}
