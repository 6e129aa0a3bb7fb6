/*
 * bench.h — ringkeeper-bench's configuration, results and the run entry point.
 *
 * A run (bench_run) is: connect every session (handshake, untimed) → all threads meet
 * → warmup → timed window → drain outstanding replies → closeSession → join. Only
 * requests whose intended send time falls in the timed window are counted; in open
 * loop the intended time is the schedule's, not the moment a session was free, so
 * queueing inside the generator shows up as latency (no coordinated omission).
 *
 * Limits (BENCH_*_MAX below) bound every table and buffer; the CLI rejects larger
 * values with a clear message.
 *
 * Thread: bench_run starts config.threads engine threads and joins them before it
 * returns; config is read-only while they run.
 */
#ifndef RK_BENCH_BENCH_H
#define RK_BENCH_BENCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/hist.h"
#include "bench/workload.h"

#define BENCH_SERVERS_MAX 16
#define BENCH_THREADS_MAX 64
#define BENCH_SESSIONS_MAX 16384
#define BENCH_INFLIGHT_MAX 1024
#define BENCH_SWEEP_MAX 16
#define BENCH_PIDS_MAX 8
#define BENCH_MULTI_OPS_MAX 8
#define BENCH_VALUE_BYTES_MAX (256u * 1024u)
#define BENCH_KEYS_MAX 10000000u
#define BENCH_LIST_CHILDREN_MAX 20000u
#define BENCH_ROOT_BYTES_MAX 64
#define BENCH_PATH_BYTES_MAX 160
#define BENCH_DURATION_S_MAX 86400.0
/* --timeline keeps 3 counters per ms of the run: warmup + duration at most this. */
#define BENCH_TIMELINE_S_MAX 3600.0

/* Error slots: 0..128 are server codes (slot = -code); the rest are found by us. */
enum {
	BENCH_ERR_SERVER_SLOTS = 129,
	BENCH_ERR_VERIFY = 129,   /* reply body wrong: bad path, bad value, bad length */
	BENCH_ERR_XID = 130,      /* reply out of order */
	BENCH_ERR_CONNLOSS = 131, /* request outstanding when its connection died */
	BENCH_ERR_SLOTS = 132,
};

struct bench_server {
	char text[64]; /* host:port as given */
	struct sockaddr_in addr;
};

struct bench_config {
	struct bench_server servers[BENCH_SERVERS_MAX];
	uint32_t server_count;
	uint32_t threads;
	uint32_t sessions;
	uint32_t inflight;
	double rate; /* ops/s over all threads; 0 = closed loop */
	double warmup_s;
	double duration_s;
	uint32_t sweep[BENCH_SWEEP_MAX];
	uint32_t sweep_count;
	char preset[32];
	struct bench_mix mix;
	uint32_t value_size;
	uint32_t keys;
	uint32_t list_children;
	uint32_t multi_min;
	uint32_t multi_max;
	bool create_sequential;
	bool create_ephemeral;
	int32_t session_timeout_ms;
	pid_t server_pids[BENCH_PIDS_MAX];
	uint32_t server_pid_count;
	bool json;
	bool quiet;
	bool setup;
	bool cleanup;
	uint64_t seed;
	char root[BENCH_ROOT_BYTES_MAX];
	bool reconnect;          /* a lost session moves to the next server (conn.c) */
	char timeline_path[256]; /* write acks per ms here; "" = no timeline */
};

struct bench_op_stats {
	uint64_t ok;
	uint64_t errors[BENCH_ERR_SLOTS];
	struct hist latency; /* ns, successful requests only */
};

struct bench_cpu_sample {
	double generator_s;                /* getrusage(RUSAGE_SELF) user+sys */
	double server_s[BENCH_PIDS_MAX];   /* /proc/PID/stat utime+stime */
	bool server_ok[BENCH_PIDS_MAX];
	double machine_busy_s;             /* /proc/stat, all CPUs, not idle/iowait */
};

/* Acknowledgements per ms from t0 (--timeline), summed over threads. */
struct bench_timeline {
	uint32_t buckets;
	uint32_t *writes; /* create, set, delete, multi answered OK */
	uint32_t *reads;  /* every other op answered OK */
	uint32_t *errors; /* error replies and requests lost with their connection */
};

struct bench_result {
	uint32_t sessions;
	uint32_t sessions_connected;
	uint32_t run_id;
	double window_s;
	struct bench_op_stats ops[BENCH_OP_COUNT];
	uint64_t open_loop_unsent; /* scheduled in the window but never sent */
	uint64_t connections_lost;
	uint64_t pings_sent;
	uint64_t reconnects;       /* sessions that handshook again after a loss (--reconnect) */
	uint64_t sessions_expired; /* reconnects answered "session expired" */
	bool stopped_early;        /* bench_stop() ended the window */
	uint64_t t0_ns;            /* CLOCK_MONOTONIC of the first intended send */
	uint64_t measure_start_ns;
	uint64_t measure_end_ns;
	struct bench_timeline timeline;
	struct bench_cpu_sample cpu_start;
	struct bench_cpu_sample cpu_end;
	/* Per session, for cleanup: creates issued and the highest sequence seen. */
	uint32_t *create_counts;
	int64_t *seq_max;
};

/*
 * Ends the current run's window now: the threads stop issuing, drain and close as at
 * the window's normal end. Async-signal-safe (main calls it from SIGINT/SIGTERM).
 */
void bench_stop(void);
/* Runs one measurement with `sessions` sessions. res is filled; free with bench_result_free. */
int bench_run(const struct bench_config *cfg, uint32_t sessions, uint32_t run_id, struct bench_result *res);
void bench_result_free(struct bench_result *res);

/* Path helpers shared by the engine and the setup/cleanup code. */
size_t bench_key_path(const struct bench_config *cfg, char *out, uint32_t key);
size_t bench_list_path(const struct bench_config *cfg, char *out);
/* Prefix of session s's created nodes: ROOT/c/<run>-<s>- or, sequential, ROOT/c/<run>-<s>/n */
size_t bench_create_prefix(const struct bench_config *cfg, char *out, uint32_t run_id, uint32_t session);

/* cpu.c */
void bench_cpu_sample_take(const struct bench_config *cfg, struct bench_cpu_sample *s);
uint64_t bench_now_ns(void);

#endif
