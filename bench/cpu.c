/*
 * cpu.c — CPU accounting for a timed window: the generator (getrusage), each server
 * process (/proc/PID/stat utime+stime) and the whole machine (/proc/stat). A sample
 * is taken at the start and the end of the window; the report divides differences by
 * the requests completed in the window.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int read_small_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/* utime+stime of pid in seconds; -1 if it cannot be read. */
static double process_cpu_s(pid_t pid)
{
	char path[64];
	char buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small_file(path, buf, sizeof(buf)))
		return -1.0;
	/* The command name may contain spaces and ')': fields restart after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1.0;
	unsigned long long utime = 0, stime = 0;
	/* After ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
		return -1.0;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double machine_busy_s(void)
{
	char buf[512];
	if (read_small_file("/proc/stat", buf, sizeof(buf)))
		return -1.0;
	unsigned long long v[8] = { 0 };
	if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
		   &v[7]) < 4)
		return -1.0;
	unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* minus idle(3), iowait(4) */
	return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

void bench_cpu_sample_take(const struct bench_config *cfg, struct bench_cpu_sample *s)
{
	memset(s, 0, sizeof(*s));
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		s->generator_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
				 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	for (uint32_t i = 0; i < cfg->server_pid_count; i++) {
		double v = process_cpu_s(cfg->server_pids[i]);
		s->server_ok[i] = v >= 0.0;
		s->server_s[i] = v;
	}
	s->machine_busy_s = machine_busy_s();
}
