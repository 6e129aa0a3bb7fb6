/* auth.c — see auth.h. SHA-1 and base64 come from OpenSSL's libcrypto. */
#include "net/auth.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

int auth_digest_id(const uint8_t *cred, size_t cred_len, char *out, size_t out_len)
{
	/* ZooKeeper takes the user as everything before the first ':' (all of it when
	 * there is none) and hashes the whole credential. */
	const uint8_t *colon = memchr(cred, ':', cred_len);
	size_t user_len = colon ? (size_t)(colon - cred) : cred_len;
	unsigned char sha[EVP_MAX_MD_SIZE];
	unsigned int sha_len = 0;
	if (!EVP_Digest(cred, cred_len, sha, &sha_len, EVP_sha1(), NULL))
		return -EINVAL;
	/* base64 of 20 bytes is 28 chars + NUL */
	if (user_len + 1 + 29 > out_len)
		return -ENOSPC;
	memcpy(out, cred, user_len);
	out[user_len] = ':';
	EVP_EncodeBlock((unsigned char *)out + user_len + 1, sha, (int)sha_len);
	return 0;
}
