/*
 * listen.h — binding a listener to a port that a server killed just before still
 * holds, and making sure no other server listens there.
 *
 * A process's io_uring requests (a multishot accept on each listener, a multishot
 * recv on each connection) keep those sockets open after the process is gone, until
 * the kernel tears its rings down in a worker thread: 5-12 ms after waitpid returned
 * (kernel 6.18, measured 2026-12-03). A server started again at once (systemd's
 * Restart=, an operator's kill -9 and start, a test) finds its ports in use. So a
 * bind that finds its port in use tries again every RK_LISTEN_RETRY_MS for up to
 * RK_LISTEN_WAIT_MS, says so once, and then fails as ZooKeeper does ("Address
 * already in use").
 *
 * Thread: start-up (it sleeps).
 */
#ifndef RK_LISTEN_H
#define RK_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>

#define RK_LISTEN_WAIT_MS 5000
#define RK_LISTEN_RETRY_MS 10

/*
 * bind(fd, sa) and, when backlog >= 0, listen(fd, backlog); EADDRINUSE is waited out
 * as above. `what` names the port in the log. 0 or -errno (not logged).
 */
int rk_bind_listen(int fd, const struct sockaddr *sa, socklen_t sa_len, int backlog, const char *what);

/*
 * Whether anyone listens on sa's port: a socket without SO_REUSEPORT binds it (and
 * is closed), which fails while a listener is there, even one with SO_REUSEPORT.
 * For a group of SO_REUSEPORT listeners (the workers' clientPort), before the first:
 * a second server of the same user would otherwise join the group and the kernel
 * spread the connections over both. Waits as rk_bind_listen does. 0 (free) or -errno.
 */
int rk_port_claim(const struct sockaddr *sa, socklen_t sa_len, const char *what);

#endif
