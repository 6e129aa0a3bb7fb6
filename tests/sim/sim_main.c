/*
 * sim_main.c — raft-sim: runs the Raft core (raft/core.h) through many seeded
 * simulations (sim.c) and checks, after every event (sim_check.c):
 *
 *   one-leader-per-term        at most one leader per term
 *   log-matching               same index and term => same entries up to there
 *   leader-completeness        a new leader holds everything committed in earlier terms
 *   state-machine-safety       every node's committed prefix is the one history
 *   applied-history, apply-*   every node applies a prefix of that history, payloads
 *                              included (chain hashes), in order, only committed
 *   commit-monotonic           a node's commit never goes back; across restarts its
 *   durable-commit-monotonic   persisted commit never goes back either
 *   commit-not-durable         the persisted commit is within the durable log
 *   one-vote-per-term          a persisted vote never changes within a term
 *   committed-durable-on-majority   no committed entry can be lost: a majority holds
 *                              it on its disk
 *   read-index-linearizable    a read index covers every commit seen before the ask
 *   liveness                   after the faults stop, a proposal commits on all nodes
 *                              within SIM_LIVENESS_UNITS
 *
 * USAGE
 *   raft-sim [--seeds N] [--first S] [--jobs J]   N seeds from S (default 10000 from 1,
 *                                                 or $RAFT_SIM_SEEDS); J processes
 *   raft-sim --seed S --trace                     replay one seed with its event trace
 *   raft-sim-mut --mutation NAME [--expect-fail]  the core built with a classic bug;
 *                                                 --expect-fail: exit 0 iff a seed fails
 *   raft-sim-mut --mutation-table                 first failing seed of each mutation
 * Each seed is deterministic whatever --jobs says; with --jobs the seeds are dealt
 * round-robin to forked processes and the lowest failing seed is reported.
 *
 * MUTATIONS: the first seed that catches each, found by running
 * `raft-sim-mut --mutation-table --seeds 100000 --jobs 2` (not hard-coded anywhere;
 * the meson tests raft_sim_catches_* rerun the search and fail if a mutation survives):
 *
 *   mutation               seed    step  invariant that fired
 *   vote-no-log-check         4     566  leader-completeness
 *   commit-old-term        2301    2489  leader-completeness (n1, leader of term 8,
 *                                        commits its term-2 index 6 by counting; n5,
 *                                        holding term-3 entries there, wins term 9)
 *   ack-before-durable        1     638  committed-durable-on-majority
 *   vote-not-persisted       72     468  one-leader-per-term
 *   accept-stale-append    5096     740  state-machine-safety
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/sim/sim.h"

struct sim_result {
	uint64_t seeds_run;
	uint64_t events;
	uint64_t recovery_max; /* slowest heal-to-marker-everywhere, in units */
	uint64_t recovery_seed;
	int failed;
	uint64_t seed;
	uint64_t step;
	char failure[256];
};

static const struct {
	const char *name;
	uint32_t bit;
} sim_mutations[] = {
	{"vote-no-log-check", RAFT_MUT_VOTE_NO_LOG_CHECK},
	{"commit-old-term", RAFT_MUT_COMMIT_OLD_TERM},
	{"ack-before-durable", RAFT_MUT_ACK_BEFORE_DURABLE},
	{"vote-not-persisted", RAFT_MUT_VOTE_NOT_PERSISTED},
	{"accept-stale-append", RAFT_MUT_ACCEPT_STALE_APPEND},
};
#define SIM_MUTATION_COUNT (int)(sizeof sim_mutations / sizeof sim_mutations[0])

/* The seed in progress, for the abort handler (a core assertion is a failure too). */
static struct sim_world *sim_current;
static int sim_result_fd = -1;
static struct sim_result sim_partial;

static void sim_on_abort(int sig)
{
	(void)sig;
	struct sim_result r = sim_partial;
	r.failed = 1;
	if (sim_current) {
		r.seed = sim_current->seed;
		r.step = sim_current->step;
	}
	snprintf(r.failure, sizeof r.failure, "core-assertion: abort() (see the assertion above)");
	if (sim_result_fd >= 0) {
		ssize_t rc = write(sim_result_fd, &r, sizeof r);
		(void)rc;
	} else {
		fprintf(stderr, "FAIL seed=%llu step=%llu %s\n", (unsigned long long)r.seed, (unsigned long long)r.step,
			r.failure);
	}
	_exit(3);
}

/* Runs seeds first, first+stride, ... (count of them), stopping at the first failure. */
static struct sim_result sim_run_range(uint64_t first, uint64_t count, uint64_t stride, uint32_t mutations)
{
	struct sim_result res = {0};
	static struct sim_world w;
	for (uint64_t k = 0; k < count; k++) {
		uint64_t seed = first + k * stride;
		sim_current = &w;
		sim_partial = res;
		int rc = sim_run_seed(seed, mutations, false, &w);
		res.seeds_run++;
		res.events += w.events_total;
		if (w.recovery_units > res.recovery_max) {
			res.recovery_max = w.recovery_units;
			res.recovery_seed = seed;
		}
		if (rc != 0) {
			res.failed = 1;
			res.seed = seed;
			res.step = w.fail_step;
			snprintf(res.failure, sizeof res.failure, "%s", w.failure);
			sim_world_free(&w);
			break;
		}
		sim_world_free(&w);
	}
	sim_current = NULL;
	return res;
}

static struct sim_result sim_run_jobs(uint64_t first, uint64_t count, int jobs, uint32_t mutations)
{
	if (jobs <= 1)
		return sim_run_range(first, count, 1, mutations);
	int fds[2];
	if (pipe(fds) != 0) {
		perror("pipe");
		exit(2);
	}
	for (int j = 0; j < jobs; j++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			exit(2);
		}
		if (pid == 0) {
			close(fds[0]);
			sim_result_fd = fds[1];
			uint64_t n = count > (uint64_t)j ? (count - (uint64_t)j + (uint64_t)jobs - 1) / (uint64_t)jobs : 0;
			struct sim_result r = sim_run_range(first + (uint64_t)j, n, (uint64_t)jobs, mutations);
			ssize_t rc = write(fds[1], &r, sizeof r);
			_exit(rc == (ssize_t)sizeof r ? 0 : 2);
		}
	}
	close(fds[1]);
	struct sim_result total = {0};
	struct sim_result r;
	while (read(fds[0], &r, sizeof r) == (ssize_t)sizeof r) {
		total.seeds_run += r.seeds_run;
		total.events += r.events;
		if (r.recovery_max > total.recovery_max) {
			total.recovery_max = r.recovery_max;
			total.recovery_seed = r.recovery_seed;
		}
		if (r.failed && (!total.failed || r.seed < total.seed)) {
			total.failed = 1;
			total.seed = r.seed;
			total.step = r.step;
			memcpy(total.failure, r.failure, sizeof total.failure);
		}
	}
	close(fds[0]);
	for (int j = 0; j < jobs; j++)
		wait(NULL);
	return total;
}

static double sim_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sim_replay(uint64_t seed, uint32_t mutations, bool trace)
{
	static struct sim_world w;
	sim_current = &w;
	signal(SIGABRT, sim_on_abort);
	int rc = sim_run_seed(seed, mutations, trace, &w);
	printf("seed %llu: %s after %llu events%s%s\n", (unsigned long long)seed, rc ? "FAIL" : "ok",
	       (unsigned long long)w.events_total, rc ? " — " : "", rc ? w.failure : "");
	sim_world_free(&w);
	return rc ? 1 : 0;
}

static const char *sim_mutation_name(uint32_t bit)
{
	for (int i = 0; i < SIM_MUTATION_COUNT; i++)
		if (sim_mutations[i].bit == bit)
			return sim_mutations[i].name;
	return NULL;
}

static void sim_print_failure(const char *argv0, const struct sim_result *r, uint32_t mutations)
{
	const char *mut = sim_mutation_name(mutations);
	printf("FAIL seed=%llu step=%llu %s\n", (unsigned long long)r->seed, (unsigned long long)r->step, r->failure);
	printf("  replay: %s --seed %llu --trace%s%s\n", argv0, (unsigned long long)r->seed, mut ? " --mutation " : "",
	       mut ? mut : "");
}

static int sim_mutation_table(const char *argv0, uint64_t count, int jobs)
{
	printf("%-22s %8s %8s  %s\n", "mutation", "seed", "step", "invariant");
	int missed = 0;
	for (int i = 0; i < SIM_MUTATION_COUNT; i++) {
		struct sim_result r = sim_run_jobs(1, count, jobs, sim_mutations[i].bit);
		if (!r.failed) {
			printf("%-22s %8s %8s  NOT CAUGHT in %llu seeds\n", sim_mutations[i].name, "-", "-",
			       (unsigned long long)count);
			missed++;
			continue;
		}
		printf("%-22s %8llu %8llu  %s\n", sim_mutations[i].name, (unsigned long long)r.seed,
		       (unsigned long long)r.step, r.failure);
	}
	(void)argv0;
	return missed ? 1 : 0;
}

__attribute__((unused)) static uint32_t sim_parse_mutation(const char *s)
{
	for (int i = 0; i < SIM_MUTATION_COUNT; i++)
		if (strcmp(s, sim_mutations[i].name) == 0)
			return sim_mutations[i].bit;
	fprintf(stderr, "unknown mutation '%s'\n", s);
	exit(2);
}

static void sim_usage(void)
{
	fprintf(stderr, "usage: raft-sim [--seeds N] [--first S] [--jobs J] | --seed S [--trace]\n"
#ifdef RAFT_MUTATIONS
			"       [--mutation NAME [--expect-fail]] [--mutation-table]\n"
#endif
	);
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t count = 10000, first = 1, one_seed = 0;
	const char *env = getenv("RAFT_SIM_SEEDS");
	if (env)
		count = strtoull(env, NULL, 10);
	int jobs = 1;
	bool trace = false, expect_fail = false, table = false, single = false;
	uint32_t mutations = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_value = i + 1 < argc;
		if (strcmp(a, "--seeds") == 0 && has_value && !env)
			count = strtoull(argv[++i], NULL, 10);
		else if (strcmp(a, "--seeds") == 0 && has_value)
			i++; /* $RAFT_SIM_SEEDS wins: run more than the CI default */
		else if (strcmp(a, "--first") == 0 && has_value)
			first = strtoull(argv[++i], NULL, 10);
		else if (strcmp(a, "--jobs") == 0 && has_value)
			jobs = atoi(argv[++i]);
		else if (strcmp(a, "--seed") == 0 && has_value)
			one_seed = strtoull(argv[++i], NULL, 10), single = true;
		else if (strcmp(a, "--trace") == 0)
			trace = true;
#ifdef RAFT_MUTATIONS
		else if (strcmp(a, "--mutation") == 0 && has_value)
			mutations = sim_parse_mutation(argv[++i]);
		else if (strcmp(a, "--expect-fail") == 0)
			expect_fail = true;
		else if (strcmp(a, "--mutation-table") == 0)
			table = true;
#endif
		else
			sim_usage();
	}
	if (jobs < 1 || jobs > 64)
		sim_usage();
	if (single)
		return sim_replay(one_seed, mutations, trace);
	if (table)
		return sim_mutation_table(argv[0], count, jobs);
	signal(SIGABRT, sim_on_abort);
	double t0 = sim_now_s();
	struct sim_result r = sim_run_jobs(first, count, jobs, mutations);
	double dt = sim_now_s() - t0;
	printf("raft-sim: %llu seeds from %llu, %llu events, %.1f s, %.0f seeds/s, %.2f M events/s (%d jobs)\n",
	       (unsigned long long)r.seeds_run, (unsigned long long)first, (unsigned long long)r.events, dt,
	       (double)r.seeds_run / dt, (double)r.events / dt / 1e6, jobs);
	printf("raft-sim: slowest recovery after the heal: %llu units (seed %llu; ticks are 7..13 units)\n",
	       (unsigned long long)r.recovery_max, (unsigned long long)r.recovery_seed);
	if (r.failed)
		sim_print_failure(argv[0], &r, mutations);
	if (expect_fail)
		return r.failed ? 0 : 1;
	return r.failed ? 1 : 0;
}
