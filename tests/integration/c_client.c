/*
 * Scripted scenario against a ZooKeeper-compatible server using the ZooKeeper C client
 * (zookeeper_mt, synchronous API).  usage: c_client HOST:PORT ROOTPATH
 * Prints one line per expectation ("ok ..." / "FAIL ...") and exits 0 only if every
 * expectation holds.  The C client needs the 37-byte handshake reply (readOnly byte).
 * Verified against Apache ZooKeeper 3.8.0.
 */
#define THREADED 1 /* enables the synchronous API in zookeeper.h */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

static int failures;
static int checks;

static void expect(int cond, const char *fmt, ...)
{
    va_list ap;
    checks++;
    printf(cond ? "ok   " : "FAIL ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!cond)
        failures++;
}

#define EXPECT_RC(call, want)                                                         \
    do {                                                                              \
        int rc_ = (call);                                                             \
        expect(rc_ == (want), "%s -> %d (%s), want %d", #call, rc_, zerror(rc_), (want)); \
    } while (0)

/* ------------------------------------------------------------------ events */
#define MAX_EVENTS 64
struct event { int type; int state; char path[512]; };
static struct event events[MAX_EVENTS];
static int nevents;
static int connected;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh; (void)ctx;
    pthread_mutex_lock(&mu);
    if (type == ZOO_SESSION_EVENT) {
        connected = (state == ZOO_CONNECTED_STATE);
    } else if (nevents < MAX_EVENTS) {
        events[nevents].type = type;
        events[nevents].state = state;
        snprintf(events[nevents].path, sizeof events[nevents].path, "%s", path ? path : "");
        nevents++;
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* wait until `n` events have been seen (or timeout); returns count seen */
static int wait_events(int n, int ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_mutex_lock(&mu);
    while (nevents < n) {
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT)
            break;
    }
    int got = nevents;
    pthread_mutex_unlock(&mu);
    return got;
}

static int wait_connected(int ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_mutex_lock(&mu);
    while (!connected) {
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT)
            break;
    }
    int c = connected;
    pthread_mutex_unlock(&mu);
    return c;
}

static void expect_event(int idx, int type, const char *path)
{
    pthread_mutex_lock(&mu);
    int ok = idx < nevents && events[idx].type == type && events[idx].state == ZOO_CONNECTED_STATE
             && strcmp(events[idx].path, path) == 0;
    expect(ok, "event #%d: type %d state %d path %s, want type %d path %s", idx,
           idx < nevents ? events[idx].type : 0, idx < nevents ? events[idx].state : 0,
           idx < nevents ? events[idx].path : "(none)", type, path);
    pthread_mutex_unlock(&mu);
}

/* ------------------------------------------------------------------ scenario */
int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST:PORT ROOT\n", argv[0]);
        return 2;
    }
    const char *root = argv[2];
    char p[512], p2[512], out[512], buf[1024];
    struct Stat st, st2;
    int len;

    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    zhandle_t *zh = zookeeper_init(argv[1], watcher, 10000, NULL, NULL, 0);
    if (!zh) {
        perror("zookeeper_init");
        return 2;
    }
    expect(wait_connected(15000), "connected");
    if (!connected) {
        zookeeper_close(zh);
        return 1;
    }
    const clientid_t *cid = zoo_client_id(zh);
    expect(cid->client_id != 0, "session id 0x%llx", (long long)cid->client_id);
    expect(zoo_recv_timeout(zh) == 10000, "negotiated timeout %d", zoo_recv_timeout(zh));

    /* create / get */
    EXPECT_RC(zoo_create(zh, root, "data", 4, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out), ZOK);
    expect(strcmp(out, root) == 0, "created path %s", out);
    EXPECT_RC(zoo_create(zh, root, "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZNODEEXISTS);
    len = sizeof buf;
    EXPECT_RC(zoo_get(zh, root, 0, buf, &len, &st), ZOK);
    expect(len == 4 && memcmp(buf, "data", 4) == 0, "get data len %d", len);
    expect(st.version == 0 && st.cversion == 0 && st.dataLength == 4 && st.numChildren == 0 &&
           st.czxid == st.mzxid && st.czxid == st.pzxid && st.ephemeralOwner == 0,
           "fresh stat (version %d dataLength %d czxid %lld mzxid %lld pzxid %lld)",
           st.version, st.dataLength, (long long)st.czxid, (long long)st.mzxid, (long long)st.pzxid);

    /* exists watch on a missing node -> CREATED */
    snprintf(p, sizeof p, "%s/child", root);
    EXPECT_RC(zoo_exists(zh, p, 1, &st2), ZNONODE);
    EXPECT_RC(zoo_create(zh, p, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, out, sizeof out), ZOK);
    expect(wait_events(1, 5000) >= 1, "exists watch fired");
    expect_event(0, ZOO_CREATED_EVENT, p);

    /* data watch -> CHANGED, one-shot */
    len = sizeof buf;
    EXPECT_RC(zoo_get(zh, root, 1, buf, &len, &st), ZOK);
    EXPECT_RC(zoo_set2(zh, root, "v2", 2, 0, &st2), ZOK);
    expect(st2.version == 1 && st2.mzxid > st.mzxid && st2.czxid == st.czxid && st2.dataLength == 2,
           "set stat version %d", st2.version);
    expect(wait_events(2, 5000) >= 2, "data watch fired");
    expect_event(1, ZOO_CHANGED_EVENT, root);
    EXPECT_RC(zoo_set(zh, root, "v3", 2, 0), ZBADVERSION);
    EXPECT_RC(zoo_set(zh, root, "v3", 2, 1), ZOK);
    expect(wait_events(3, 700) == 2, "no second data event (one-shot)");

    /* sequential + ephemeral */
    snprintf(p, sizeof p, "%s/s-", root);
    EXPECT_RC(zoo_create(zh, p, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_SEQUENCE, out, sizeof out), ZOK);
    snprintf(p2, sizeof p2, "%s/s-0000000001", root);
    expect(strcmp(out, p2) == 0, "sequential path %s want %s", out, p2);
    snprintf(p, sizeof p, "%s/e", root);
    EXPECT_RC(zoo_create(zh, p, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0), ZOK);
    EXPECT_RC(zoo_exists(zh, p, 0, &st), ZOK);
    expect(st.ephemeralOwner == cid->client_id, "ephemeralOwner 0x%llx",
           (long long)st.ephemeralOwner);
    snprintf(p2, sizeof p2, "%s/e/sub", root);
    EXPECT_RC(zoo_create(zh, p2, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZNOCHILDRENFOREPHEMERALS);

    /* children with stat + child watch */
    struct String_vector kids;
    memset(&kids, 0, sizeof kids);
    EXPECT_RC(zoo_get_children2(zh, root, 1, &kids, &st), ZOK);
    expect(kids.count == 3, "3 children (got %d)", kids.count);
    expect(st.numChildren == 3 && st.cversion == 3, "parent numChildren %d cversion %d",
           st.numChildren, st.cversion);
    deallocate_String_vector(&kids);
    EXPECT_RC(zoo_delete(zh, p, -1), ZOK);   /* delete the ephemeral: child watch fires */
    expect(wait_events(3, 5000) >= 3, "child watch fired");
    expect_event(2, ZOO_CHILD_EVENT, root);
    EXPECT_RC(zoo_exists(zh, root, 0, &st2), ZOK);
    expect(st2.numChildren == 2 && st2.cversion == 4 && st2.pzxid > st.pzxid,
           "after delete numChildren %d cversion %d", st2.numChildren, st2.cversion);

    /* errors */
    EXPECT_RC(zoo_delete(zh, root, -1), ZNOTEMPTY);
    snprintf(p, sizeof p, "%s/missing", root);
    EXPECT_RC(zoo_delete(zh, p, -1), ZNONODE);
    len = sizeof buf;
    EXPECT_RC(zoo_get(zh, p, 0, buf, &len, &st), ZNONODE);
    snprintf(p2, sizeof p2, "%s/missing/x", root);
    EXPECT_RC(zoo_create(zh, p2, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZNONODE);
    snprintf(p2, sizeof p2, "%s/child", root);
    EXPECT_RC(zoo_delete(zh, p2, 5), ZBADVERSION);

    /* multi: success */
    {
        zoo_op_t ops[3];
        zoo_op_result_t res[3];
        char pbuf[512];
        snprintf(p, sizeof p, "%s/m1", root);
        zoo_create_op_init(&ops[0], p, "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, pbuf, sizeof pbuf);
        zoo_set_op_init(&ops[1], root, "v4", 2, 2, &st);
        zoo_check_op_init(&ops[2], p2, 0);
        EXPECT_RC(zoo_multi(zh, 3, ops, res), ZOK);
        expect(res[0].err == ZOK && res[1].err == ZOK && res[2].err == ZOK, "multi results ok");
        expect(strcmp(pbuf, p) == 0, "multi create path %s", pbuf);
        expect(st.version == 3, "multi set stat version %d", st.version);
    }
    /* multi: failure */
    {
        zoo_op_t ops[3];
        zoo_op_result_t res[3];
        char pbuf[512];
        snprintf(p, sizeof p, "%s/m2", root);
        snprintf(p2, sizeof p2, "%s/missing", root);
        zoo_create_op_init(&ops[0], p, "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, pbuf, sizeof pbuf);
        zoo_delete_op_init(&ops[1], p2, -1);
        zoo_set_op_init(&ops[2], root, "v5", 2, -1, NULL);
        EXPECT_RC(zoo_multi(zh, 3, ops, res), ZNONODE);
        expect(res[0].err == ZOK && res[1].err == ZNONODE && res[2].err == ZRUNTIMEINCONSISTENCY,
               "multi failure results %d %d %d", res[0].err, res[1].err, res[2].err);
        EXPECT_RC(zoo_exists(zh, p, 0, &st), ZNONODE);
        len = sizeof buf;
        EXPECT_RC(zoo_get(zh, root, 0, buf, &len, &st), ZOK);
        expect(len == 2 && memcmp(buf, "v4", 2) == 0 && st.version == 3, "multi rolled back");
    }

    /* big value: 512 KiB */
    {
        static char big[512 * 1024];
        static char back[512 * 1024];
        memset(big, 'b', sizeof big);
        snprintf(p, sizeof p, "%s/big", root);
        EXPECT_RC(zoo_create(zh, p, big, sizeof big, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0), ZOK);
        len = sizeof back;
        EXPECT_RC(zoo_get(zh, p, 0, back, &len, &st), ZOK);
        expect(len == (int)sizeof big && memcmp(big, back, sizeof big) == 0 &&
               st.dataLength == (int)sizeof big, "512 KiB round trip");
    }

    EXPECT_RC(zookeeper_close(zh), ZOK);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
