/* core/file.h: rk_delete_paced deletes, shortens step by step, and is idempotent. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"

static char dir[] = "/tmp/rk-test-file-XXXXXX";
static int dfd = -1;

static void setup(void)
{
	cr_assert(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	close(dfd);
}

static void make_file(const char *name, size_t size)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	cr_assert_eq(pwrite(fd, "end", 3, (off_t)size - 3), 3);
	close(fd);
}

static bool exists(const char *name)
{
	struct stat st;
	return fstatat(dfd, name, &st, 0) == 0;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

TestSuite(file, .init = setup, .fini = teardown);

Test(file, a_paced_delete_shortens_in_steps_then_unlinks)
{
	/* A second link keeps the inode observable: its size is what the steps left. */
	make_file("snap", (1u << 20) + 100);
	cr_assert_eq(linkat(dfd, "snap", dfd, "witness", 0), 0);
	struct rk_delete_pace pace = {.step_bytes = 256u << 10, .pause_us = 20000};
	double t0 = now_ms();
	cr_assert_eq(rk_delete_paced(dfd, "snap", "snap.tmp", &pace), 1);
	double took = now_ms() - t0;
	cr_assert(!exists("snap") && !exists("snap.tmp"));
	struct stat st;
	cr_assert_eq(fstatat(dfd, "witness", &st, 0), 0);
	/* 1 MiB + 100 in 256 KiB steps while more than a step is left: 4 steps, 100 bytes */
	cr_assert_eq(st.st_size, 100);
	cr_assert_geq(took, 4 * 20.0, "4 steps with 20 ms pauses took %.1f ms", took);
}

Test(file, a_step_of_zero_unlinks_at_once)
{
	make_file("log", 1u << 20);
	cr_assert_eq(linkat(dfd, "log", dfd, "witness", 0), 0);
	struct rk_delete_pace pace = {.step_bytes = 0, .pause_us = 1000000};
	cr_assert_eq(rk_delete_paced(dfd, "log", "log.tmp", &pace), 1);
	cr_assert(!exists("log") && !exists("log.tmp"));
	struct stat st;
	cr_assert_eq(fstatat(dfd, "witness", &st, 0), 0);
	cr_assert_eq(st.st_size, 1u << 20);
}

Test(file, a_missing_file_is_not_an_error_and_a_small_one_is_just_unlinked)
{
	struct rk_delete_pace pace = RK_DELETE_PACE_DEFAULT;
	cr_assert_eq(rk_delete_paced(dfd, "gone", "gone.tmp", &pace), 0);
	make_file("small", 4096);
	cr_assert_eq(rk_delete_paced(dfd, "small", "small.tmp", &pace), 1);
	cr_assert(!exists("small") && !exists("small.tmp"));
	cr_assert_eq(rk_delete_paced(dfd, "small", "small.tmp", &pace), 0, "a second delete finds nothing");
}

Test(file, a_doomed_name_left_by_a_crash_is_replaced)
{
	make_file("seg.tmp", 8192); /* a half-deleted predecessor */
	make_file("seg", 8192);
	struct rk_delete_pace pace = {.step_bytes = 4096, .pause_us = 0};
	cr_assert_eq(rk_delete_paced(dfd, "seg", "seg.tmp", &pace), 1);
	cr_assert(!exists("seg") && !exists("seg.tmp"));
}

Test(file, a_link_is_unlinked_and_its_target_left_whole)
{
	/* The open refuses a link (O_NOFOLLOW): nothing is shortened, the link goes. */
	make_file("target", 1u << 20);
	cr_assert_eq(symlinkat("target", dfd, "seg"), 0);
	struct rk_delete_pace pace = {.step_bytes = 4096, .pause_us = 0};
	cr_assert_eq(rk_delete_paced(dfd, "seg", "seg.tmp", &pace), 1);
	struct stat st;
	cr_assert(fstatat(dfd, "seg", &st, AT_SYMLINK_NOFOLLOW) < 0 && fstatat(dfd, "seg.tmp", &st, AT_SYMLINK_NOFOLLOW) < 0);
	cr_assert_eq(fstatat(dfd, "target", &st, 0), 0);
	cr_assert_eq(st.st_size, 1u << 20);
}

Test(file, a_fifo_is_unlinked_without_waiting_for_a_reader, .timeout = 10)
{
	cr_assert_eq(mkfifoat(dfd, "seg", 0644), 0);
	struct rk_delete_pace pace = {.step_bytes = 4096, .pause_us = 0};
	cr_assert_eq(rk_delete_paced(dfd, "seg", "seg.tmp", &pace), 1);
	cr_assert(!exists("seg") && !exists("seg.tmp"));
}

Test(file, a_directory_is_not_deleted_and_says_why)
{
	cr_assert_eq(mkdirat(dfd, "seg", 0755), 0);
	struct rk_delete_pace pace = RK_DELETE_PACE_DEFAULT;
	cr_assert_eq(rk_delete_paced(dfd, "seg", "seg.tmp", &pace), -EISDIR);
}
