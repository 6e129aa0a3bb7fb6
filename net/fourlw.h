/*
 * fourlw.h — ZooKeeper's four-letter words: a raw 4-byte word at the start of a fresh
 * connection, answered with text, then the connection closes. Formats follow
 * ZooKeeper 3.8 so existing tools (zkServer.sh status, go-zookeeper's FLWSrvr,
 * kazoo, monitoring scripts) parse them. Gated by 4lw.commands.whitelist.
 */
#ifndef RK_FOURLW_H
#define RK_FOURLW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;
struct conn;

/* Whether the 4 bytes are a word we know (the connection is then not ZooKeeper framing). */
bool fourlw_is_word(const uint8_t word[4]);
/* Writes the answer to c's output and marks c to close once it is sent. Worker thread.
 * For a whitelisted stmk it only sets c->fourlw_arg_wanted (c is CLOSING): the answer
 * waits for the argument. */
void fourlw_answer(struct worker *w, struct conn *c, const uint8_t word[4]);
/* stmk's argument: bytes that follow the word on c's stream, in order, while
 * c->fourlw_arg_wanted. Answers once 8 have come; ignores any beyond. Worker thread. */
void fourlw_on_arg(struct worker *w, struct conn *c, const uint8_t *data, size_t len);
/* An average as ZooKeeper prints it (srvr, stat, mntr's zk_avg_latency): rounded to 4
 * decimals (AvgMinMaxCounter) and written as Java's Double.toString writes it, with at
 * least one decimal ("0.0", "1.5", "0.2857") and below 0.001 in E notation ("5.0E-4"). */
const char *fourlw_avg_text(double v, char *buf, size_t size);

#endif
