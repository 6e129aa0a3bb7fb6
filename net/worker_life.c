/*
 * worker_life.c — a worker's life outside its loop (net/worker.c): creating it and its
 * listener, setting up its io_uring and provided-buffer ring on its own thread,
 * pinning it to its CPU, joining and destroying it, and handing worker 0 the /metrics
 * listener.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/hub.h"
#include "core/log.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/server.h"
#include "net/worker.h"
#include "net/worker_impl.h"

int worker_setup_ring(struct worker *w)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	int rc = io_uring_queue_init_params(WORKER_RING_ENTRIES, &w->ring, &p);
	if (rc == -EINVAL) {
		log_warn("io_uring: SINGLE_ISSUER|DEFER_TASKRUN unsupported, using plain rings");
		memset(&p, 0, sizeof p);
		rc = io_uring_queue_init_params(WORKER_RING_ENTRIES, &w->ring, &p);
	}
	if (rc < 0) {
		log_error("io_uring_queue_init: %s%s", strerror(-rc),
			  rc == -EPERM || rc == -ENOSYS ? " (io_uring is disabled or unavailable on this kernel: "
							  "check /proc/sys/kernel/io_uring_disabled and seccomp)"
							: "");
		return rc;
	}
	w->ring_fd = w->ring.ring_fd;
	size_t ring_bytes = WORKER_RECV_BUF_COUNT * sizeof(struct io_uring_buf);
	void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	w->buf_ring = mem;
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof reg);
	reg.ring_addr = (unsigned long)mem;
	reg.ring_entries = WORKER_RECV_BUF_COUNT;
	reg.bgid = (__u16)w->buf_group;
	rc = io_uring_register_buf_ring(&w->ring, &reg, 0);
	if (rc < 0) {
		log_error("io_uring_register_buf_ring: %s (kernel too old for provided buffer rings?)",
			  strerror(-rc));
		return rc;
	}
	io_uring_buf_ring_init(w->buf_ring);
	w->buf_base = aligned_alloc(4096, (size_t)WORKER_RECV_BUF_COUNT * WORKER_RECV_BUF_BYTES);
	if (!w->buf_base)
		return -ENOMEM;
	worker_provide_buffers(w);
	hub_attach_worker(w->srv->hub, w->index, w->ring_fd, ud_make(UD_WAKE, 0));
	return 0;
}

static int worker_listen(struct worker *w)
{
	const struct rk_config *cfg = &w->srv->cfg;
	/* One listener a worker (the kernel spreads the connections); the first makes
	 * sure no other server listens on the port, which SO_REUSEPORT would allow. */
	return server_listen_tcp(cfg->client_port_address, cfg->client_port,
				 w->index == 0 ? SERVER_LISTEN_GROUP_FIRST : SERVER_LISTEN_GROUP, "clientPort",
				 &w->listen_fd);
}

int worker_create(struct server *srv, int index, struct worker **out)
{
	struct worker *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->index = index;
	w->srv = srv;
	w->buf_group = 1;
	w->listen_fd = -1;
	worker_stats_init(&w->stats);
	pthread_mutex_init(&w->registry_lock, NULL);
	/* Proposals and read replies are built here; a reply may be far larger than a
	 * request (getChildren of a big node: ZooKeeper sends it whole), up to what one
	 * connection may have queued. Grown on demand. */
	jute_writer_init(&w->scratch, WORKER_SCRATCH_BYTES_MAX);
	w->conns = calloc(WORKER_CONNS_MAX, sizeof *w->conns);
	w->conn_gen = calloc(WORKER_CONNS_MAX, sizeof *w->conn_gen);
	w->free_slots = calloc(WORKER_CONNS_MAX, sizeof *w->free_slots);
	if (!w->conns || !w->conn_gen || !w->free_slots) {
		worker_destroy(w);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < WORKER_CONNS_MAX; i++)
		w->free_slots[i] = WORKER_CONNS_MAX - 1 - i;
	w->free_count = WORKER_CONNS_MAX;
	int rc = worker_listen(w);
	if (rc < 0) {
		worker_destroy(w);
		return rc;
	}
	*out = w;
	return 0;
}

int worker_start(struct worker *w)
{
	struct worker_boot boot = { .w = w, .rc = 0 };
	sem_init(&boot.done, 0, 0);
	int rc = pthread_create(&w->thread, NULL, worker_main, &boot);
	if (rc)
		return -rc;
	sem_wait(&boot.done);
	sem_destroy(&boot.done);
	if (boot.rc < 0) {
		pthread_join(w->thread, NULL);
		w->thread = 0;
		return boot.rc;
	}
	/* Worker i goes to the (first + i)-th CPU this process may use (taskset, a
	 * container's cpuset), round robin when there are more workers than CPUs; first
	 * sets apart the servers of one ensemble on one host (config.h). */
	cpu_set_t allowed, set;
	int cpu = -1;
	int first = w->srv->cfg.worker_cpu_first;
	if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 0) {
		int k = (first + w->index) % CPU_COUNT(&allowed);
		for (int c = 0; c < CPU_SETSIZE && cpu < 0; c++)
			if (CPU_ISSET(c, &allowed) && k-- == 0)
				cpu = c;
	}
	if (cpu < 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		cpu = (first + w->index) % (int)(cpus > 0 ? cpus : 1);
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(w->thread, sizeof set, &set))
		log_warn("worker %d: could not pin to CPU %d", w->index, cpu);
	return 0;
}

void worker_join(struct worker *w)
{
	if (w->thread) {
		/* a sleeping worker wakes within its wait timeout */
		pthread_join(w->thread, NULL);
		w->thread = 0;
	}
}

void worker_destroy(struct worker *w)
{
	if (!w)
		return;
	if (w->conns) {
		for (uint32_t i = 0; i < WORKER_CONNS_MAX; i++) {
			struct conn *c = w->conns[i];
			if (c) {
				close(c->fd);
				conn_free(w, c);
			}
		}
	}
	while (w->reap_list) {
		struct conn_reap *r = w->reap_list;
		w->reap_list = r->next;
		free(r);
	}
	if (w->ring_fd > 0)
		io_uring_queue_exit(&w->ring);
	if (w->buf_ring)
		munmap(w->buf_ring, WORKER_RECV_BUF_COUNT * sizeof(struct io_uring_buf));
	free(w->buf_base);
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	http_server_destroy(w->http);
	free(w->conns);
	free(w->conn_gen);
	free(w->free_slots);
	jute_writer_free(&w->scratch);
	pthread_mutex_destroy(&w->registry_lock);
	free(w);
}

static struct io_uring_sqe *worker_http_sqe(void *ctx)
{
	return worker_get_sqe(ctx);
}

int worker_serve_http(struct worker *w, int listen_fd, http_render_fn render, void *render_ctx)
{
	assert(!w->http && !w->thread);
	return http_server_create(listen_fd, ud_make(UD_HTTP, 0), render, render_ctx, worker_http_sqe, w, &w->http);
}
