/*
 * main.c — the ringkeeper process: configuration, start-up in dependency order
 * (store, hub, raft thread, workers), and a clean stop on SIGTERM/SIGINT. It is the
 * one file that sees every layer (core/ net/ raft/ store/): it wires them together;
 * the top-level meson.build links their libraries into the binary.
 *
 * Start-up order matters: every listener is bound before any thread starts, so a
 * port conflict stops the process before it serves anyone; the raft thread starts
 * before the workers, which push to it from their first request.
 */
#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/hub.h"
#include "core/log.h"
#include "core/sentinel.h"
#include "net/http.h"
#include "net/metrics.h"
#include "net/server.h"
#include "net/worker.h"
#include "raft/pipeline.h"
#include "store/store.h"

static int mkdir_p(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Every I/O path of the server is an io_uring. Where a seccomp profile forbids it (the
 * default ones of Docker >= 25 and containerd >= 2.0 do) or the kernel has it off
 * (kernel.io_uring_disabled), say so once, before anything else fails less clearly. */
static int io_uring_check(void)
{
	struct io_uring ring;
	int rc = io_uring_queue_init(2, &ring, 0);
	if (rc < 0) {
		log_error("io_uring is not available (io_uring_setup: %s). RingKeeper needs it: in a container, allow "
			  "io_uring_setup, io_uring_enter and io_uring_register in the seccomp profile; on the host, "
			  "check that /proc/sys/kernel/io_uring_disabled is 0 (docs/operations.md)",
			  strerror(-rc));
		return rc;
	}
	io_uring_queue_exit(&ring);
	return 0;
}

/* systemd's Type=notify without libsystemd: one datagram to $NOTIFY_SOCKET (a path,
 * or an abstract name when it starts with '@'); nothing when it is unset. */
static void systemd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !path[0])
		return;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@')) {
		log_warn("NOTIFY_SOCKET=%s is not a socket path: systemd is not told", path);
		return;
	}
	memcpy(addr.sun_path, path, len);
	if (path[0] == '@')
		addr.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_warn("NOTIFY_SOCKET=%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static struct server srv;
static struct hub hub;

/* /metrics (metricsPort, or ZooKeeper's Prometheus provider): bound here with the
 * other listeners, served by worker 0. 0 or -errno (logged). */
static int serve_metrics(struct metrics **out)
{
	if (srv.cfg.metrics_port == 0)
		return 0;
	int fd = -1;
	int rc = http_listen(srv.cfg.metrics_http_host, srv.cfg.metrics_port, &fd);
	if (rc < 0)
		return rc;
	struct metrics *m = metrics_create(&srv);
	if (!m || (rc = worker_serve_http(srv.workers[0], fd, metrics_render, m)) < 0) {
		close(fd);
		metrics_destroy(m);
		log_error("metrics: %s", strerror(m ? -rc : ENOMEM));
		return m ? rc : -ENOMEM;
	}
	*out = m;
	log_info("metrics: Prometheus /metrics on http://%s:%u/metrics", srv.cfg.metrics_http_host,
		 (unsigned)srv.cfg.metrics_port);
	return 0;
}

/* The configuration from the command line (and the zoo.cfg it names): -1 to go on,
 * else the exit status (0 after --help or --version). */
static int load_config(int argc, char **argv)
{
	char err[512] = "";
	config_defaults(&srv.cfg);
	int rc = config_parse_args(&srv.cfg, argc, argv, err, sizeof err);
	if (rc == CONFIG_ARGS_HELP) {
		config_print_help(stdout);
		return 0;
	}
	if (rc == CONFIG_ARGS_VERSION) {
		printf("ringkeeper 0.1.0 (ZooKeeper protocol 3.8)\n");
		return 0;
	}
	if (rc < 0 || config_finalize(&srv.cfg, err, sizeof err) < 0 || config_read_myid(&srv.cfg, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	rk_log_level_current = (enum rk_log_level)srv.cfg.log_level;
	for (uint32_t i = 0; i < srv.cfg.warning_count; i++)
		log_warn("%s", srv.cfg.warnings[i]);
	return -1;
}

/* The data directories, the store, the queues and the workers (not started): 0 or -1,
 * logged. */
static int build_server(void)
{
	int rc;
	if ((rc = mkdir_p(srv.cfg.data_dir)) < 0 || (rc = mkdir_p(srv.cfg.data_log_dir)) < 0) {
		log_error("cannot create data directories %s, %s: %s", srv.cfg.data_dir, srv.cfg.data_log_dir,
			  strerror(-rc));
		return -1;
	}
	srv.start_ms = rk_now_ms();
	srv.min_session_timeout_ms = srv.cfg.session_timeout_ms_min;
	srv.max_session_timeout_ms = srv.cfg.session_timeout_ms_max;
	/* ZooKeeper's session id layout: server id in the top byte, then start time. */
	int64_t seed = (int64_t)(((uint64_t)srv.cfg.server_id << 56) | (((uint64_t)srv.start_ms << 24) >> 8));
	atomic_store(&srv.next_session_id, seed);
	pthread_mutex_init(&srv.ip_lock, NULL);

	static char dynamic_config[CONFIG_SERVERS_MAX * (2 * CONFIG_HOST_BYTES_MAX + 64) + 16];
	if (config_dynamic_text(&srv.cfg, dynamic_config, sizeof dynamic_config) < 0) {
		log_error("the server.N lines do not fit /zookeeper/config");
		return -1;
	}
	struct store_config store_cfg = { .config_text = dynamic_config, .keeper_api = srv.cfg.keeper_api_nodes, .enforce_quota = srv.cfg.enforce_quota };
	srv.store = store_create(&store_cfg);
	if (!srv.store) {
		log_error("cannot create the store");
		return -1;
	}
	srv.worker_count = srv.cfg.worker_count > RK_WORKERS_MAX ? RK_WORKERS_MAX : srv.cfg.worker_count;
	if (srv.worker_count > HUB_PORTS_MAX)
		srv.worker_count = HUB_PORTS_MAX;
	if ((rc = hub_init(&hub, srv.worker_count)) < 0) {
		log_error("cannot create the worker queues: %s", strerror(-rc));
		return -1;
	}
	srv.hub = &hub;
	for (int i = 0; i < srv.worker_count; i++) {
		if ((rc = worker_create(&srv, i, &srv.workers[i])) < 0) {
			log_error("worker %d: %s", i, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

/* The raft thread (recovery first), then the workers: 0 or -1, logged. */
static int start_threads(void)
{
	int rc;
	if ((rc = raft_pipeline_create(&srv.cfg, srv.store, &hub, &srv.raft)) < 0 || (rc = raft_pipeline_start(srv.raft)) < 0) {
		log_error("raft thread: %s", strerror(-rc));
		return -1;
	}
	for (int i = 0; i < srv.worker_count; i++) {
		if ((rc = worker_start(srv.workers[i])) < 0) {
			log_error("worker %d could not start: %s", i, strerror(-rc));
			atomic_store(&hub.stopping, true);
			for (int j = 0; j < i; j++)
				worker_join(srv.workers[j]);
			raft_pipeline_join(srv.raft);
			return -1;
		}
	}
	return 0;
}

static void stop_server(struct metrics *metrics)
{
	atomic_store(&hub.stopping, true);
	for (int i = 0; i < srv.worker_count; i++)
		worker_join(srv.workers[i]);
	raft_pipeline_join(srv.raft);
	for (int i = 0; i < srv.worker_count; i++)
		worker_destroy(srv.workers[i]);
	metrics_destroy(metrics);
	raft_pipeline_destroy(srv.raft);
	hub_destroy(&hub);
	store_destroy(srv.store);
	free(srv.ip_counts);
}

int main(int argc, char **argv);
int main(int argc, char **argv)
{
	int rc = load_config(argc, argv);
	if (rc >= 0)
		return rc;

	/* Signals are taken by main with sigwait; every thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (io_uring_check() < 0)
		return 1;
	/* Before any socket or thread: sentinel.h. */
	pid_t sentinel = rk_sentinel_start();
	if (sentinel < 0)
		log_warn("no sentinel process (%s): after a kill the clients see their connections end a few ms late",
			 strerror(-sentinel));
	if (build_server() < 0)
		return 1;
	struct metrics *metrics = NULL;
	if (serve_metrics(&metrics) < 0 || start_threads() < 0)
		return 1;
	log_info("ringkeeper serving on %s:%d with %d workers, dataDir %s, forceSync %s", srv.cfg.client_port_address,
		 srv.cfg.client_port, srv.worker_count, srv.cfg.data_dir, srv.cfg.force_sync ? "yes" : "no");
	if (srv.cfg.servers_on_host > 1)
		log_info("%u servers of the ensemble on this host: workers pinned from CPU slot %d%s",
			 srv.cfg.servers_on_host, srv.cfg.worker_cpu_first,
			 srv.cfg.worker_count_auto ? ", the host's CPUs shared (threads=0)" : "");

	systemd_notify("READY=1\nSTATUS=serving\n");

	int sig = 0;
	sigwait(&set, &sig);
	log_info("signal %d: stopping", sig);
	systemd_notify("STOPPING=1\n");
	stop_server(metrics);
	log_info("stopped");
	return 0;
}
