/*
 * ha_load.c: the client side of `make ha-test` (tests/ha/ha-test.sh).
 *
 * It speaks the native protocol itself (common/frame.h and the generated
 * protobuf-c code), one request at a time per connection, and on a lost
 * connection, a timeout or UNAVAILABLE reconnects and sends the same
 * request again: every write carries an idempotency key (creates) or a
 * mutation id (pushes), so a retry, on whichever sentrad HAProxy picks,
 * returns the stored outcome rather than writing twice. Nothing is counted
 * as acknowledged unless the server answered OK.
 *
 *   ha_load write    --addr H:P --token T --seconds S [--workers W] --out FILE
 *                    [--region CODE] [--tag TAG]
 *       W processes write for S seconds, alternating CreateSentra (key
 *       TAG-wN-i, name = key) and PushChanges (one new record, mutation id
 *       = key, client id TAG-wN). Every acknowledged write is one line
 *       "A C|P KEY ID MONO_MS" in FILE; each worker ends with a line
 *       "S wN acks=.. retries=.. rejected=.. max_stall_ms=.." (the longest
 *       time one write took from its first failed attempt to its OK).
 *   ha_load pull     --addr H:P --token T --out FILE [--page N] [--delay-ms D]
 *       A district app's full pull, page by page (D ms between pages);
 *       each change is a line "R ID VERSION" in FILE; a retry resumes from
 *       the last cursor. Prints "pulled=N pages=P retries=R".
 *   ha_load ryw      --addr H:P --token T --seconds S --region CODE [--bounded] [--tag TAG]
 *       Creates records in CODE (which must hold none at the start) and
 *       after each acknowledgement reads GetStatistics for CODE: the count
 *       must be at least the records acknowledged so far. --bounded asks
 *       for bounded staleness (metadata sentra-consistency: bounded).
 *       Prints "writes=N reads=N stale=N max_behind=N".
 *   ha_load longpoll --addr H:P --token T --wait-ms MS
 *       Pulls to the head of the feed, then long-polls; prints
 *       "woke_ms=N changes=N" when the poll answers.
 *   ha_load create   --addr H:P --token T --region CODE --tag NAME
 *       One CreateSentra (key and name NAME); prints its id.
 *   ha_load now
 *       Prints the monotonic clock in ms (the clock of MONO_MS above).
 *   ha_load health-hex
 *       Prints, in hex, a REQUEST frame for Health/Check (for HAProxy's
 *       tcp-check send-binary).
 *
 * Every loop is bounded in time; a write still unacknowledged 30 s after
 * the end is given up (and not recorded).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "sentra/v1/rpc.pb-c.h"
#include "sentra/v1/sentra.pb-c.h"
#include "sentra/v1/system.pb-c.h"

#define IO_TIMEOUT_MS 15000     /* one request's answer */
#define GIVE_UP_MS 30000        /* a write after the end of the run */

static struct {
    char host[64];
    int port;
    const char *token;
    const char *out;
    const char *region;
    const char *tag;
    int seconds, workers, page, delay_ms, wait_ms, bounded;
} opt = { .port = 0, .seconds = 10, .workers = 4, .page = 50, .region = "18.71", .tag = "ha" };

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ha_load: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* ---------------------------------------------------------------- wire */

typedef struct {
    int fd;          /* -1 when not connected */
    uint32_t sid;    /* last stream id used */
} link_t;

static int link_open(link_t *l)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
    if (fd < 0 || inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1)
        die("bad address %s", opt.host);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    l->fd = fd;
    l->sid = 0;
    return 0;
}

static void link_close(link_t *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_full(int fd, uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        int left = (int)(deadline - mono_ms());
        if (left <= 0)
            return -1;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t got = recv(fd, p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* The REQUEST frame of one call (malloc'd; *len set). */
static uint8_t *request_frame(uint32_t sid, const char *method, const ProtobufCMessage *msg,
                              const char *key, int bounded, uint32_t timeout_ms, size_t *len)
{
    Sentra__V1__Request r = SENTRA__V1__REQUEST__INIT;
    Sentra__V1__Metadata md[2] = { SENTRA__V1__METADATA__INIT, SENTRA__V1__METADATA__INIT };
    Sentra__V1__Metadata *mds[2];
    char auth[400];
    size_t nmd = 0;
    r.method = (char *)method;
    r.timeout_ms = timeout_ms;
    if (opt.token != NULL) {
        snprintf(auth, sizeof(auth), "Bearer %s", opt.token);
        md[nmd].key = "authorization";
        md[nmd].value = auth;
        mds[nmd] = &md[nmd];
        nmd++;
    }
    if (bounded) {
        md[nmd].key = "sentra-consistency";
        md[nmd].value = "bounded";
        mds[nmd] = &md[nmd];
        nmd++;
    }
    r.metadata = mds;
    r.n_metadata = nmd;
    if (key != NULL)
        r.idempotency_key = (char *)key;
    uint8_t *inner = NULL;
    if (msg != NULL) {
        size_t n = protobuf_c_message_get_packed_size(msg);
        inner = malloc(n + 1);
        if (inner == NULL)
            abort();
        protobuf_c_message_pack(msg, inner);
        r.payload.data = inner;
        r.payload.len = n;
    }
    size_t plen = sentra__v1__request__get_packed_size(&r);
    uint8_t *out = malloc(SENTRA_FRAME_HEADER_LEN + plen);
    if (out == NULL)
        abort();
    sentra__v1__request__pack(&r, out + SENTRA_FRAME_HEADER_LEN);
    sentra_frame_header(out, SENTRA_FRAME_REQUEST, 0, sid, (uint32_t)plen);
    free(inner);
    *len = SENTRA_FRAME_HEADER_LEN + plen;
    return out;
}

/* One call on l (connecting first if needed). Returns the response
 * (caller frees) or NULL when the connection failed or timed out (l is
 * then closed). */
static Sentra__V1__Response *call(link_t *l, const char *method, const ProtobufCMessage *msg,
                                  const char *key, int bounded, int timeout_ms)
{
    if (l->fd < 0 && link_open(l) != 0)
        return NULL;
    uint32_t sid = ++l->sid;
    size_t len;
    uint8_t *f = request_frame(sid, method, msg, key, bounded, (uint32_t)timeout_ms, &len);
    int r = send_all(l->fd, f, len);
    free(f);
    if (r != 0) {
        link_close(l);
        return NULL;
    }
    int64_t deadline = mono_ms() + timeout_ms + 2000;
    for (;;) {
        uint8_t h[SENTRA_FRAME_HEADER_LEN];
        if (read_full(l->fd, h, sizeof(h), deadline) != 0)
            break;
        uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (n > SENTRA_FRAME_DEFAULT_MAX)
            break;
        uint8_t *p = malloc(n + 1);
        if (p == NULL)
            abort();
        if (read_full(l->fd, p, n, deadline) != 0) {
            free(p);
            break;
        }
        uint32_t fsid = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
        if (h[4] == SENTRA_FRAME_PING) {
            h[4] = SENTRA_FRAME_PONG;
            if (send_all(l->fd, h, sizeof(h)) != 0 || send_all(l->fd, p, n) != 0) {
                free(p);
                break;
            }
        } else if (h[4] == SENTRA_FRAME_RESPONSE && fsid == sid) {
            Sentra__V1__Response *resp = sentra__v1__response__unpack(NULL, n, p);
            free(p);
            if (resp == NULL)
                break;
            return resp;
        }
        /* GOAWAY: the answer may still come, or the connection closes. */
        free(p);
    }
    link_close(l);
    return NULL;
}

/* Whether a failed attempt may simply be sent again. */
static int retryable(const Sentra__V1__Response *r)
{
    return r == NULL || r->code == SENTRA__V1__CODE__UNAVAILABLE ||
           r->code == SENTRA__V1__CODE__DEADLINE_EXCEEDED ||
           r->code == SENTRA__V1__CODE__CANCELLED || r->code == SENTRA__V1__CODE__ABORTED;
}

/* Sends one request until it is answered with something else than a
 * retryable failure, or until give_up (mono ms). Returns the response or
 * NULL; counts retries; *stall_ms gets the time from the first failure to
 * the answer (0 if none failed). */
static Sentra__V1__Response *call_retry(link_t *l, const char *method, const ProtobufCMessage *msg,
                                        const char *key, int bounded, int64_t give_up,
                                        long *retries, int64_t *stall_ms)
{
    int64_t first_fail = 0;
    int backoff = 20;
    *stall_ms = 0;
    for (;;) {
        Sentra__V1__Response *r = call(l, method, msg, key, bounded, 5000);
        if (!retryable(r)) {
            if (first_fail)
                *stall_ms = mono_ms() - first_fail;
            return r;
        }
        if (r != NULL)
            sentra__v1__response__free_unpacked(r, NULL);
        if (!first_fail)
            first_fail = mono_ms();
        (*retries)++;
        link_close(l);
        if (mono_ms() >= give_up)
            return NULL;
        sleep_ms(backoff);
        backoff = backoff < 400 ? backoff * 2 : 500;
    }
}

/* ---------------------------------------------------------------- records */

static void uuid4(char out[37])
{
    uint8_t b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
        die("cannot read /dev/urandom");
    close(fd);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static void fill_sentra(Sentra__V1__Sentra *s, const char *name, const char *region)
{
    sentra__v1__sentra__init(s);
    s->name = (char *)name;
    s->regency_code = (char *)region;
    s->commodity = "Kopi";
    s->main_product = "Kopi bubuk";
    s->kbli_code = "10761";
    s->kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    s->sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
    s->status = SENTRA__V1__STATUS__STATUS_FORMED;
    s->formed_on = "2020-01-02";
}

/* Creates one record; on OK copies its id into id_out. Returns the
 * response code (-1: given up). */
static int do_create(link_t *l, const char *key, const char *region, int64_t give_up,
                     long *retries, int64_t *stall, char id_out[64])
{
    Sentra__V1__CreateSentraRequest req = SENTRA__V1__CREATE_SENTRA_REQUEST__INIT;
    Sentra__V1__Sentra s;
    fill_sentra(&s, key, region);
    req.sentra = &s;
    Sentra__V1__Response *r = call_retry(l, "/sentra.v1.SentraService/CreateSentra", &req.base,
                                         key, 0, give_up, retries, stall);
    if (r == NULL)
        return -1;
    int code = (int)r->code;
    if (code == 0) {
        Sentra__V1__Sentra *got = sentra__v1__sentra__unpack(NULL, r->payload.len, r->payload.data);
        if (got == NULL || strcmp(got->name, key) != 0)
            die("create %s: the answer is not the record written", key);
        snprintf(id_out, 64, "%s", got->id);
        sentra__v1__sentra__free_unpacked(got, NULL);
    } else {
        fprintf(stderr, "ha_load: create %s: code %d: %s\n", key, code, r->message);
    }
    sentra__v1__response__free_unpacked(r, NULL);
    return code;
}

/* Pushes one new record (mutation id = key). Returns 0 when APPLIED, else
 * the response code or 100 + outcome, -1 when given up. */
static int do_push(link_t *l, const char *client_id, const char *key, const char *region,
                   int64_t give_up, long *retries, int64_t *stall, char id_out[64])
{
    char id[37];
    uuid4(id);
    Sentra__V1__Sentra s;
    fill_sentra(&s, key, region);
    s.id = id;
    Sentra__V1__Mutation m = SENTRA__V1__MUTATION__INIT;
    Sentra__V1__Mutation *ms[1] = { &m };
    m.mutation_id = (char *)key;
    m.op = SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
    m.sentra = &s;
    Sentra__V1__PushChangesRequest req = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
    req.client_id = (char *)client_id;
    req.mutations = ms;
    req.n_mutations = 1;
    Sentra__V1__Response *r = call_retry(l, "/sentra.v1.SyncService/PushChanges", &req.base,
                                         NULL, 0, give_up, retries, stall);
    if (r == NULL)
        return -1;
    int code = (int)r->code;
    if (code == 0) {
        Sentra__V1__PushChangesResponse *pr =
            sentra__v1__push_changes_response__unpack(NULL, r->payload.len, r->payload.data);
        if (pr == NULL || pr->n_results != 1)
            die("push %s: bad answer", key);
        if (pr->results[0]->outcome != SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED) {
            fprintf(stderr, "ha_load: push %s: outcome %d\n", key, pr->results[0]->outcome);
            code = 100 + pr->results[0]->outcome;
        }
        snprintf(id_out, 64, "%s", id);
        sentra__v1__push_changes_response__free_unpacked(pr, NULL);
    } else {
        fprintf(stderr, "ha_load: push %s: code %d: %s\n", key, code, r->message);
    }
    sentra__v1__response__free_unpacked(r, NULL);
    return code;
}

/* ---------------------------------------------------------------- modes */

static void write_worker(int w, int fd_out)
{
    link_t l = { -1, 0 };
    int64_t end = mono_ms() + (int64_t)opt.seconds * 1000;
    long acks = 0, retries = 0, rejected = 0;
    int64_t max_stall = 0;
    char client_id[96];
    snprintf(client_id, sizeof(client_id), "%s-w%d", opt.tag, w);
    for (long i = 0; mono_ms() < end; i++) {
        char key[128], id[64], line[256];
        int64_t stall = 0;
        int push = i % 2 == 1;
        snprintf(key, sizeof(key), "%s-w%d-%ld", opt.tag, w, i);
        int rc = push ? do_push(&l, client_id, key, opt.region, end + GIVE_UP_MS, &retries, &stall, id)
                      : do_create(&l, key, opt.region, end + GIVE_UP_MS, &retries, &stall, id);
        if (rc == -1)
            break;      /* given up: not acknowledged, not recorded */
        if (rc != 0) {
            rejected++;
            continue;
        }
        acks++;
        if (stall > max_stall)
            max_stall = stall;
        int n = snprintf(line, sizeof(line), "A %c %s %s %lld\n", push ? 'P' : 'C', key, id,
                         (long long)mono_ms());
        if (write(fd_out, line, (size_t)n) != n)
            die("cannot write %s", opt.out);
    }
    char line[256];
    int n = snprintf(line, sizeof(line), "S w%d acks=%ld retries=%ld rejected=%ld max_stall_ms=%lld\n",
                     w, acks, retries, rejected, (long long)max_stall);
    if (write(fd_out, line, (size_t)n) != n)
        die("cannot write %s", opt.out);
    link_close(&l);
    exit(rejected ? 1 : 0);
}

static int mode_write(void)
{
    if (opt.out == NULL)
        die("write needs --out");
    int fd = open(opt.out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        die("cannot open %s", opt.out);
    pid_t pids[64];
    int n = opt.workers > 64 ? 64 : opt.workers;
    for (int w = 0; w < n; w++) {
        pids[w] = fork();
        if (pids[w] < 0)
            die("fork");
        if (pids[w] == 0)
            write_worker(w, fd);
    }
    int bad = 0;
    for (int w = 0; w < n; w++) {
        int st;
        while (waitpid(pids[w], &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    close(fd);
    return bad ? 1 : 0;
}

/* Pulls from cursor to the head; calls each(change) per record. Returns
 * the final cursor (malloc'd) or NULL on failure. */
static char *pull_all(link_t *l, const char *from, FILE *out, long *pulled, long *pages,
                      long *retries, int64_t give_up)
{
    char *cursor = strdup(from);
    for (;;) {
        Sentra__V1__PullChangesRequest req = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
        req.cursor = cursor;
        req.limit = opt.page;
        int64_t stall;
        Sentra__V1__Response *r = call_retry(l, "/sentra.v1.SyncService/PullChanges", &req.base,
                                             NULL, 0, give_up, retries, &stall);
        if (r == NULL || r->code != 0) {
            if (r != NULL)
                fprintf(stderr, "ha_load: pull: code %d: %s\n", r->code, r->message);
            free(cursor);
            return NULL;
        }
        Sentra__V1__PullChangesResponse *pr =
            sentra__v1__pull_changes_response__unpack(NULL, r->payload.len, r->payload.data);
        sentra__v1__response__free_unpacked(r, NULL);
        if (pr == NULL)
            die("pull: bad answer");
        for (size_t i = 0; i < pr->n_changes; i++)
            if (out != NULL)
                fprintf(out, "R %s %lld\n", pr->changes[i]->id, (long long)pr->changes[i]->version);
        *pulled += (long)pr->n_changes;
        (*pages)++;
        free(cursor);
        cursor = strdup(pr->next_cursor);
        int more = pr->more;
        sentra__v1__pull_changes_response__free_unpacked(pr, NULL);
        if (!more)
            return cursor;
        if (opt.delay_ms > 0)
            sleep_ms(opt.delay_ms);
    }
}

static int mode_pull(void)
{
    if (opt.out == NULL)
        die("pull needs --out");
    FILE *out = fopen(opt.out, "w");
    if (out == NULL)
        die("cannot open %s", opt.out);
    link_t l = { -1, 0 };
    long pulled = 0, pages = 0, retries = 0;
    char *cur = pull_all(&l, "", out, &pulled, &pages, &retries, mono_ms() + 120000);
    fclose(out);
    link_close(&l);
    printf("pulled=%ld pages=%ld retries=%ld\n", pulled, pages, retries);
    if (cur == NULL)
        return 1;
    free(cur);
    return 0;
}

static long stats_count(link_t *l, long *retries)
{
    Sentra__V1__GetStatisticsRequest req = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
    Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
    f.regency_code = (char *)opt.region;
    req.filter = &f;
    int64_t stall;
    Sentra__V1__Response *r = call_retry(l, "/sentra.v1.StatsService/GetStatistics", &req.base,
                                         NULL, opt.bounded, mono_ms() + 20000, retries, &stall);
    if (r == NULL || r->code != 0) {
        if (r != NULL)
            fprintf(stderr, "ha_load: stats: code %d: %s\n", r->code, r->message);
        return -1;
    }
    Sentra__V1__GetStatisticsResponse *sr =
        sentra__v1__get_statistics_response__unpack(NULL, r->payload.len, r->payload.data);
    sentra__v1__response__free_unpacked(r, NULL);
    if (sr == NULL)
        die("stats: bad answer");
    long n = sr->total != NULL ? (long)sr->total->sentra : 0;
    sentra__v1__get_statistics_response__free_unpacked(sr, NULL);
    return n;
}

static int mode_ryw(void)
{
    link_t l = { -1, 0 };
    int64_t end = mono_ms() + (int64_t)opt.seconds * 1000;
    long writes = 0, reads = 0, stale = 0, max_behind = 0, retries = 0;
    for (long i = 0; mono_ms() < end; i++) {
        char key[128], id[64];
        int64_t stall;
        snprintf(key, sizeof(key), "%s-ryw-%ld", opt.tag, i);
        int rc = do_create(&l, key, opt.region, end + GIVE_UP_MS, &retries, &stall, id);
        if (rc != 0)
            return 1;
        writes++;
        long n = stats_count(&l, &retries);
        if (n < 0)
            return 1;
        reads++;
        if (n < writes) {
            stale++;
            if (writes - n > max_behind)
                max_behind = writes - n;
        }
    }
    link_close(&l);
    printf("writes=%ld reads=%ld stale=%ld max_behind=%ld retries=%ld\n", writes, reads, stale,
           max_behind, retries);
    return 0;
}

static int mode_longpoll(void)
{
    link_t l = { -1, 0 };
    long pulled = 0, pages = 0, retries = 0;
    opt.page = 5000;
    char *cur = pull_all(&l, "", NULL, &pulled, &pages, &retries, mono_ms() + 60000);
    if (cur == NULL)
        return 1;
    Sentra__V1__PullChangesRequest req = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
    req.cursor = cur;
    req.limit = 100;
    req.wait_ms = (uint32_t)opt.wait_ms;
    printf("waiting\n");
    fflush(stdout);
    int64_t t0 = mono_ms();
    /* No retry: the poll must be answered by the instance it was sent to. */
    Sentra__V1__Response *r = call(&l, "/sentra.v1.SyncService/PullChanges", &req.base, NULL, 0,
                                   opt.wait_ms + 5000);
    int64_t woke = mono_ms() - t0;
    free(cur);
    if (r == NULL || r->code != 0) {
        fprintf(stderr, "ha_load: long poll failed\n");
        return 1;
    }
    Sentra__V1__PullChangesResponse *pr =
        sentra__v1__pull_changes_response__unpack(NULL, r->payload.len, r->payload.data);
    sentra__v1__response__free_unpacked(r, NULL);
    if (pr == NULL)
        die("long poll: bad answer");
    printf("woke_ms=%lld changes=%zu\n", (long long)woke, pr->n_changes);
    sentra__v1__pull_changes_response__free_unpacked(pr, NULL);
    link_close(&l);
    return 0;
}

static int mode_create(void)
{
    link_t l = { -1, 0 };
    long retries = 0;
    int64_t stall;
    char id[64];
    int rc = do_create(&l, opt.tag, opt.region, mono_ms() + 20000, &retries, &stall, id);
    link_close(&l);
    if (rc != 0)
        return 1;
    printf("%s\n", id);
    return 0;
}

static int mode_health_hex(void)
{
    Sentra__V1__HealthCheckRequest h = SENTRA__V1__HEALTH_CHECK_REQUEST__INIT;
    size_t len;
    opt.token = NULL;
    uint8_t *f = request_frame(1, "/sentra.v1.Health/Check", &h.base, NULL, 0, 2000, &len);
    for (size_t i = 0; i < len; i++)
        printf("%02x", f[i]);
    printf("\n");
    free(f);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "addr", 1, 0, 'a' }, { "token", 1, 0, 'T' }, { "seconds", 1, 0, 's' },
        { "workers", 1, 0, 'w' }, { "out", 1, 0, 'o' }, { "region", 1, 0, 'r' },
        { "tag", 1, 0, 'g' }, { "page", 1, 0, 'p' }, { "delay-ms", 1, 0, 'd' },
        { "wait-ms", 1, 0, 'W' }, { "bounded", 0, 0, 'b' }, { 0, 0, 0, 0 }
    };
    if (argc < 2)
        die("usage: ha_load write|pull|ryw|longpoll|create|health-hex [options] (see the source)");
    const char *mode = argv[1];
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'a': {
            const char *colon = strrchr(optarg, ':');
            if (colon == NULL || (size_t)(colon - optarg) >= sizeof(opt.host))
                die("--addr HOST:PORT");
            snprintf(opt.host, sizeof(opt.host), "%.*s", (int)(colon - optarg), optarg);
            opt.port = atoi(colon + 1);
            break;
        }
        case 'T': opt.token = optarg; break;
        case 's': opt.seconds = atoi(optarg); break;
        case 'w': opt.workers = atoi(optarg); break;
        case 'o': opt.out = optarg; break;
        case 'r': opt.region = optarg; break;
        case 'g': opt.tag = optarg; break;
        case 'p': opt.page = atoi(optarg); break;
        case 'd': opt.delay_ms = atoi(optarg); break;
        case 'W': opt.wait_ms = atoi(optarg); break;
        case 'b': opt.bounded = 1; break;
        default: die("unknown option");
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "health-hex") == 0)
        return mode_health_hex();
    if (strcmp(mode, "now") == 0) {
        printf("%lld\n", (long long)mono_ms());
        return 0;
    }
    if (opt.port <= 0)
        die("--addr HOST:PORT is required");
    if (strcmp(mode, "write") == 0)
        return mode_write();
    if (strcmp(mode, "pull") == 0)
        return mode_pull();
    if (strcmp(mode, "ryw") == 0)
        return mode_ryw();
    if (strcmp(mode, "longpoll") == 0)
        return mode_longpoll();
    if (strcmp(mode, "create") == 0)
        return mode_create();
    die("unknown mode %s", mode);
    return 2;
}
