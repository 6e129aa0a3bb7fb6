/* hardstate.c — see hardstate.h for the file and the rules. */
#include "raft/hardstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/jute.h"
#include "core/crc32c.h"

static void put64(uint8_t *p, uint64_t v)
{
	jute_put_be32(p, (uint32_t)(v >> 32));
	jute_put_be32(p + 4, (uint32_t)v);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)jute_get_be32(p) << 32 | jute_get_be32(p + 4);
}

int hardstate_load(const char *dir, struct hardstate *out, char *why, size_t why_size)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, HARDSTATE_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint8_t buf[HARDSTATE_BYTES + 1];
	ssize_t n = pread(fd, buf, sizeof buf, 0);
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	const char *bad = NULL;
	if (n != HARDSTATE_BYTES)
		bad = "wrong size";
	else if (memcmp(buf, "RKHS", 4) != 0)
		bad = "bad magic";
	else if (jute_get_be32(buf + 4) != HARDSTATE_VERSION)
		bad = "unknown version";
	else if (jute_get_be32(buf + 32) != crc32c(buf, 32))
		bad = "checksum mismatch";
	if (bad) {
		snprintf(why, why_size, "%s: %s (%zd bytes)", path, bad, n);
		return -EUCLEAN;
	}
	out->term = get64(buf + 8);
	out->vote = get64(buf + 16);
	out->commit = get64(buf + 24);
	return 0;
}

int hardstate_save(const char *dir, const struct hardstate *hs)
{
	uint8_t buf[HARDSTATE_BYTES];
	memcpy(buf, "RKHS", 4);
	jute_put_be32(buf + 4, HARDSTATE_VERSION);
	put64(buf + 8, hs->term);
	put64(buf + 16, hs->vote);
	put64(buf + 24, hs->commit);
	jute_put_be32(buf + 32, crc32c(buf, 32));
	char tmp[4096], path[4096];
	snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, HARDSTATE_FILE);
	snprintf(path, sizeof path, "%s/%s", dir, HARDSTATE_FILE);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int err = 0;
	ssize_t n = pwrite(fd, buf, sizeof buf, 0);
	if (n < 0)
		err = -errno;
	else if (n != (ssize_t)sizeof buf)
		err = -EIO;
	else if (fdatasync(fd) < 0)
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (fsync(dfd) < 0)
		err = -errno;
	close(dfd);
	return err;
}
