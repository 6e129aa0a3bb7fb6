/*
 * sentinel.h — the server's sockets end the moment it dies, however it dies.
 *
 * A killed process's io_uring requests (a multishot accept on each listener, a
 * multishot recv on each connection) hold its sockets until the kernel tears its
 * rings down in a worker thread: 5-12 ms after the process is gone (kernel 6.18,
 * measured 2026-12-03). Until then its clients see no end of their connections, and
 * a request sent in between goes into a socket about to be reset: go-zookeeper's
 * TestIfAuthdataSurvivesReconnect and TestDNSHostProviderReconnect failed that way.
 * A JVM's sockets close as it exits: a ZooKeeper client sees the end at once and
 * sends on its next connection.
 *
 * The sentinel is a small process that shares the server's file table (clone with
 * CLONE_FILES, made before any thread), so it sees every socket the server ever
 * opens without being told. It waits on a pidfd of the server. When the server is
 * gone (a signal, a crash, the OOM killer, or a clean stop) it shuts every socket
 * down, which acts on the socket whoever else holds it (the FIN goes out now, and a
 * listener stops taking connections), and exits, closing the table. Its memory is
 * its own copy-on-write pages of the moment it was made. SIGTERM and SIGINT are
 * blocked in it (main blocks them before): a stop signalled to the whole group stops
 * the server, and the sentinel follows.
 *
 * Thread: main, before any other thread starts.
 */
#ifndef RK_SENTINEL_H
#define RK_SENTINEL_H

#include <sys/types.h>

/* Starts the sentinel: its pid, or -errno (the kernel has no pidfd_open: before 5.3). */
pid_t rk_sentinel_start(void);

#endif
