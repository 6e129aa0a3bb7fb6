/*
 * test_hardstate.c — raft/hardstate.c: the hard state file round-trips, a new server
 * has none, a replaced file is whole, and any damage is refused rather than read.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/hardstate.h"

static char dir[256];
static char why[512];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/rk-hs-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	why[0] = 0;
}

static void teardown(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void damage(off_t at, const void *bytes, size_t len, bool truncate_there)
{
	char path[300];
	snprintf(path, sizeof path, "%s/%s", dir, HARDSTATE_FILE);
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	if (truncate_there)
		cr_assert_eq(ftruncate(fd, at), 0);
	else
		cr_assert_eq(pwrite(fd, bytes, len, at), (ssize_t)len);
	close(fd);
}

TestSuite(hardstate, .init = setup, .fini = teardown);

Test(hardstate, a_new_server_has_none)
{
	struct hardstate hs;
	cr_assert_eq(hardstate_load(dir, &hs, why, sizeof why), -ENOENT);
}

Test(hardstate, round_trip_and_replace)
{
	struct hardstate a = { .term = 7, .vote = 3, .commit = 0x1122334455667788ULL }, b;
	cr_assert_eq(hardstate_save(dir, &a), 0);
	cr_assert_eq(hardstate_load(dir, &b, why, sizeof why), 0);
	cr_assert_eq(b.term, 7);
	cr_assert_eq(b.vote, 3);
	cr_assert_eq(b.commit, 0x1122334455667788ULL);
	struct hardstate c = { .term = 8, .vote = 0, .commit = 9 };
	cr_assert_eq(hardstate_save(dir, &c), 0);
	cr_assert_eq(hardstate_load(dir, &b, why, sizeof why), 0);
	cr_assert_eq(b.term, 8);
	cr_assert_eq(b.vote, 0);
	cr_assert_eq(b.commit, 9);
	char tmp[300];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, HARDSTATE_FILE);
	cr_assert_eq(access(tmp, F_OK), -1, "the temporary file is renamed away");
}

Test(hardstate, a_leftover_temporary_file_is_ignored)
{
	struct hardstate a = { .term = 2, .vote = 1, .commit = 5 }, b;
	cr_assert_eq(hardstate_save(dir, &a), 0);
	char tmp[300];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, HARDSTATE_FILE);
	FILE *f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs("half a write", f);
	fclose(f);
	cr_assert_eq(hardstate_load(dir, &b, why, sizeof why), 0);
	cr_assert_eq(b.term, 2);
}

Test(hardstate, a_flipped_bit_is_refused)
{
	struct hardstate a = { .term = 2, .vote = 1, .commit = 5 }, b;
	cr_assert_eq(hardstate_save(dir, &a), 0);
	uint8_t x = 0x03; /* term's low byte 2 -> 3 */
	damage(15, &x, 1, false);
	cr_assert_eq(hardstate_load(dir, &b, why, sizeof why), -EUCLEAN);
	cr_assert(strstr(why, "checksum") != NULL, "%s", why);
}

Test(hardstate, a_short_file_or_wrong_magic_is_refused)
{
	struct hardstate a = { .term = 2, .vote = 1, .commit = 5 }, b;
	cr_assert_eq(hardstate_save(dir, &a), 0);
	damage(0, "XXXX", 4, false);
	cr_assert_eq(hardstate_load(dir, &b, why, sizeof why), -EUCLEAN);
	cr_assert(strstr(why, "magic") != NULL, "%s", why);
	cr_assert_eq(hardstate_save(dir, &a), 0);
	damage(20, NULL, 0, true);
	cr_assert_eq(hardstate_load(dir, &b, why, sizeof why), -EUCLEAN);
	cr_assert(strstr(why, "size") != NULL, "%s", why);
}
