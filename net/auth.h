/*
 * auth.h — authentication schemes a connection can present (setAuth, xid -4).
 * digest: "user:password" becomes the id "user:base64(sha1(user:password))",
 * compared for equality against ACL ids and superDigest.
 */
#ifndef RK_AUTH_H
#define RK_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Writes the digest id for credentials "user:password". 0, or -EINVAL / -ENOSPC. */
int auth_digest_id(const uint8_t *cred, size_t cred_len, char *out, size_t out_len);

#endif
