/* log.c — see log.h. */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum rk_log_level rk_log_level_current = RK_LOG_INFO;
static __thread char thread_name[16] = "main";

void rk_log_thread_name(const char *name)
{
	snprintf(thread_name, sizeof thread_name, "%s", name);
	/* The OS name too, so top -H, perf and ps show "rk-raft", "rk-w0", ... */
	char os_name[16];
	snprintf(os_name, sizeof os_name, "rk-%s", name);
	pthread_setname_np(pthread_self(), os_name);
}

int rk_log_level_parse(const char *name, enum rk_log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(name, names[i]) == 0) {
			*out = (enum rk_log_level)i;
			return 0;
		}
	}
	return -1;
}

void rk_log_write(enum rk_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN ", "INFO ", "DEBUG" };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
			 tags[level], thread_name);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
