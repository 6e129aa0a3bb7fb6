/*
 * log.h — the process log: one line per event on stderr,
 *   2026-11-27T06:14:31.123Z INFO  [w0] message
 * Any thread may log; a line is written with one write(2) so lines never interleave.
 */
#ifndef RK_LOG_H
#define RK_LOG_H

enum rk_log_level { RK_LOG_ERROR = 0, RK_LOG_WARN = 1, RK_LOG_INFO = 2, RK_LOG_DEBUG = 3 };

extern enum rk_log_level rk_log_level_current;

/* The thread's name in log lines ("main", "w0", "raft"). */
void rk_log_thread_name(const char *name);
void rk_log_write(enum rk_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rk_log_level_parse(const char *name, enum rk_log_level *out);

#define rk_log(level, ...)                                      \
	do {                                                    \
		if ((level) <= rk_log_level_current)            \
			rk_log_write((level), __VA_ARGS__);     \
	} while (0)
#define log_error(...) rk_log(RK_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) rk_log(RK_LOG_WARN, __VA_ARGS__)
#define log_info(...) rk_log(RK_LOG_INFO, __VA_ARGS__)
#define log_debug(...) rk_log(RK_LOG_DEBUG, __VA_ARGS__)

#endif
