/*
 * loadgen.c: the sentra load generator used by `make bench` (bench/run.sh).
 *
 * Opens C connections on one libuv loop and keeps D requests in flight on
 * each (D = 1 by default: like redis-benchmark and pgbench without
 * pipelining), for a duration or a request count, then prints one line of
 * key=value results: requests, errors, throughput, latency p50/p99/max.
 * It speaks the wire protocol directly with the codec (common/frame.h) and
 * the generated protobuf-c code, so that the client costs as little as
 * possible and the figure measures the server.
 *
 * Workloads (--workload):
 *   ping    SystemService/Ping (no database)
 *   get     SentraService/GetSentra, ids drawn at random from --ids FILE
 *   list    SentraService/ListSentra, one page (--page-size) of a province
 *           drawn from --regions FILE (or unfiltered)
 *   stats   StatsService/GetStatistics grouped by province
 *   push    SyncService/PushChanges, --batch new records per request, in
 *           regencies drawn from --regions FILE (the token must be allowed
 *           to write there)
 *   pull    SyncService/PullChanges from the beginning to the end with
 *           --page-size records per page, repeated; reports records/s;
 *           with --kinds all, records of every kind (members, ...)
 *   members RecordService/ListMembers: the first page (--page-size, default
 *           100) of a regency drawn from --regions FILE
 *   mstats  StatsService/GetStatistics of the MEMBERS subject grouped by
 *           size class
 *   idle    opens C connections, pings each once, then holds them idle for
 *           --duration seconds (for the server's memory per connection)
 *   stream  SyncService/StreamChanges from the empty cursor until its first
 *           message with more = false (the catch-up), then CANCEL and
 *           again; each message decoded; reports records/s; --kinds all
 *           as for pull
 *   handshake  each connection: connect (and TLS handshake), one Ping,
 *           close, again; reports connections per second
 *
 * --tls puts TLS (OpenSSL, memory BIOs, ALPN sentra/1) on every TCP
 * connection; --resume makes each resume the session of a first
 * connection made before the run (tickets), as returning clients do.
 *
 * Output, one line on stdout, e.g.
 *   workload=ping clients=16 depth=1 seconds=5.000 requests=512345 errors=0
 *   rps=102469.0 p50_ms=0.142 p99_ms=0.410 max_ms=3.1 records=0 records_per_s=0
 * Errors (non-OK statuses) are counted and the first few printed on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "frame.h"
#include "sentra/v1/rpc.pb-c.h"
#include "sentra/v1/sentra.pb-c.h"
#include "sentra/v1/system.pb-c.h"

enum workload { W_PING, W_GET, W_LIST, W_STATS, W_PUSH, W_PULL, W_MEMBERS, W_MSTATS, W_IDLE,
                W_STREAM, W_HANDSHAKE };

static const char *const workload_names[] = { "ping", "get", "list", "stats", "push", "pull",
                                              "members", "mstats", "idle", "stream", "handshake" };

/* --kinds all: every RecordKind */
static Sentra__V1__RecordKind all_kinds[] = { 1, 2, 3, 4, 5 };

/* ---------------------------------------------------------------- options */

static struct {
    const char *host;
    int port;
    const char *unix_path;
    int clients;
    int depth;             /* requests in flight per connection */
    double duration;       /* seconds; 0 with a count */
    long count;            /* total requests; 0 with a duration */
    double warmup;         /* seconds not measured at the start */
    enum workload wl;
    const char *token;
    const char *ids_file;
    const char *regions_file;
    int batch;
    int page_size;
    int all_kinds;         /* pull, stream: every kind of record */
    int timeout_ms;
    int quiet;
    int tls;               /* TLS on TCP */
    int resume;            /* resume one session (tickets) */
    const char *ca;        /* verify the server with this CA (else no verification) */
} opt = {
    .host = "127.0.0.1", .clients = 16, .depth = 1, .duration = 5, .wl = W_PING,
    .batch = 100, .page_size = 0, .timeout_ms = 30000,
};

/* ---------------------------------------------------------------- state */

struct inflight {
    uint32_t stream_id;     /* 0: slot free */
    uint64_t sent_ns;
    int records;            /* push: mutations in this request */
    int cancelled;          /* stream: caught up, CANCEL sent; its status ends it */
};

struct client {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_stream_t *stream;
    uv_connect_t connect_req;
    int index;
    uint32_t next_stream;
    struct inflight *slots;    /* opt.depth of them */
    int inflight;
    uint8_t *rbuf;             /* received bytes not yet decoded */
    size_t rlen, rcap;
    uint8_t *wbuf;             /* encoding buffer, reused */
    size_t wcap;
    char *cursor;              /* pull: cursor of the next page */
    long pull_records;         /* pull: records in the current full pass */
    int connected, closed;
    uint64_t rng;
    SSL *ssl;                  /* --tls: the session (memory BIOs); NULL: plaintext */
    BIO *rbio, *wbio;          /* ciphertext in and out (owned by ssl) */
    int tls_ready;             /* handshake done */
    int tls_dropped;           /* idle: our side's session freed, the socket kept */
    uint64_t started_ns;       /* handshake workload: when this connection began */
};

struct wreq {
    uv_write_t req;
    uint8_t data[];
};

static uv_loop_t *loop;
static struct client *clients;
static uv_timer_t end_timer, warm_timer;
static uint64_t t_start_ns, t_measure_ns, t_end_ns;
static int measuring, stopping;
static long sent_total;            /* requests sent (for --count) */
static long done_ok, done_err;     /* measured answers */
static long records_done;          /* measured records pushed or pulled */
static long pull_passes;           /* full pulls completed while measuring */
static uint32_t *lat_us;           /* measured latencies */
static size_t nlat, caplat;
static int errors_printed;
static int connected_count, connect_failures;
static SSL_CTX *tls_ctx;
static SSL_SESSION *tls_session;   /* --resume: the session every connection offers */
static long tls_resumed;           /* handshakes that resumed */
static struct sockaddr_in server_sa;
static int next_client;            /* idle: clients started so far */
#define IDLE_BATCH 256             /* idle: connections being set up at once */

static char **ids;                 /* get: the ids to draw from */
static size_t nids;
static char **regions;             /* push/list: region codes */
static size_t nregions;
static char auth_value[512];
static Sentra__V1__Metadata auth_md = SENTRA__V1__METADATA__INIT;
static Sentra__V1__Metadata *auth_mds[1] = { &auth_md };

static void client_send_next(struct client *c);
static void client_close(struct client *c);
static SSL_SESSION *first_session(void);
static void stop_all(void);
static void idle_ping_done(void);

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t rnd(struct client *c)
{
    /* xorshift64*: cheap and good enough to pick ids. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

static char **read_lines(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die("cannot open %s: %s", path, strerror(errno));
    char **v = NULL;
    size_t cap = 0;
    char line[256];
    *n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            v = realloc(v, cap * sizeof(*v));
            if (v == NULL)
                die("out of memory");
        }
        v[(*n)++] = strdup(line);
    }
    fclose(f);
    if (*n == 0)
        die("%s holds no lines", path);
    return v;
}

static void record_latency(uint64_t ns)
{
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 16;
        lat_us = realloc(lat_us, caplat * sizeof(*lat_us));
        if (lat_us == NULL)
            die("out of memory");
    }
    uint64_t us = ns / 1000;
    lat_us[nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* ---------------------------------------------------------------- requests */

static void uuid4(struct client *c, char out[37])
{
    uint64_t a = rnd(c), b = rnd(c);
    uint8_t u[16];
    memcpy(u, &a, 8);
    memcpy(u + 8, &b, 8);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
             u[13], u[14], u[15]);
}

/* A bump allocator for decoding the messages of a stream or pull (what
 * a client that keeps nothing of a message past its handling would use):
 * protobuf-c allocates every string and array of a message apart, and
 * malloc/free of some thirty pieces per record was most of the decoding.
 * A message that does not fit takes malloc'ed pieces for the rest and
 * makes the next arena big enough. */
static struct {
    uint8_t *p;
    size_t used, cap;
    size_t asked;          /* bytes the current message asked for */
} arena;

static void *arena_alloc(void *data, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena.asked += n;
    if (arena.used + n > arena.cap) {
        void *q = malloc(n);
        if (q == NULL)
            die("out of memory");
        return q;
    }
    void *q = arena.p + arena.used;
    arena.used += n;
    return q;
}

static void arena_free(void *data, void *q)
{
    if (q != NULL && ((uint8_t *)q < arena.p || (uint8_t *)q >= arena.p + arena.cap))
        free(q);
}

/* After a message's free_unpacked: the arena is empty again. */
static void arena_reset(void)
{
    if (arena.asked > arena.cap) {
        free(arena.p);
        arena.cap = arena.asked + arena.asked / 4;
        arena.p = malloc(arena.cap);
        if (arena.p == NULL)
            die("out of memory");
    }
    arena.used = 0;
    arena.asked = 0;
}

static ProtobufCAllocator arena_allocator = { arena_alloc, arena_free, NULL };

/* Packs the method's request message into a malloc'd buffer. */
static uint8_t *pack_msg(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*len ? *len : 1);
    if (p == NULL)
        die("out of memory");
    protobuf_c_message_pack(m, p);
    return p;
}

/* The method name and serialized request for the next request of c.
 * *records is set to the records the request carries (push). */
static const char *build_request(struct client *c, uint8_t **payload, size_t *plen, int *records)
{
    *records = 0;
    switch (opt.wl) {
    case W_PING:
    case W_IDLE:
    case W_HANDSHAKE: {
        *payload = NULL;
        *plen = 0;
        return "/sentra.v1.SystemService/Ping";
    }
    case W_GET: {
        Sentra__V1__GetSentraRequest r = SENTRA__V1__GET_SENTRA_REQUEST__INIT;
        r.id = ids[rnd(c) % nids];
        *payload = pack_msg(&r.base, plen);
        return "/sentra.v1.SentraService/GetSentra";
    }
    case W_LIST: {
        Sentra__V1__ListSentraRequest r = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
        Sentra__V1__SentraFilter f = SENTRA__V1__SENTRA_FILTER__INIT;
        char prov[3];
        if (nregions > 0) {
            const char *code = regions[rnd(c) % nregions];
            memcpy(prov, code, 2);
            prov[2] = '\0';
            f.province_code = prov;
            r.filter = &f;
        }
        r.page_size = opt.page_size > 0 ? opt.page_size : 50;
        *payload = pack_msg(&r.base, plen);
        return "/sentra.v1.SentraService/ListSentra";
    }
    case W_STATS: {
        Sentra__V1__GetStatisticsRequest r = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
        Sentra__V1__GroupBy g = SENTRA__V1__GROUP_BY__GROUP_BY_PROVINCE;
        r.group_by = &g;
        r.n_group_by = 1;
        *payload = pack_msg(&r.base, plen);
        return "/sentra.v1.StatsService/GetStatistics";
    }
    case W_PULL: {
        Sentra__V1__PullChangesRequest r = SENTRA__V1__PULL_CHANGES_REQUEST__INIT;
        r.cursor = c->cursor ? c->cursor : "";
        r.limit = opt.page_size > 0 ? opt.page_size : 5000;
        if (opt.all_kinds) {
            r.kinds = all_kinds;
            r.n_kinds = 5;
        }
        *payload = pack_msg(&r.base, plen);
        return "/sentra.v1.SyncService/PullChanges";
    }
    case W_MEMBERS: {
        Sentra__V1__ListMembersRequest r = SENTRA__V1__LIST_MEMBERS_REQUEST__INIT;
        Sentra__V1__RecordFilter f = SENTRA__V1__RECORD_FILTER__INIT;
        f.regency_code = (char *)regions[rnd(c) % nregions];
        r.filter = &f;
        r.page_size = opt.page_size > 0 ? opt.page_size : 100;
        *payload = pack_msg(&r.base, plen);
        return "/sentra.v1.RecordService/ListMembers";
    }
    case W_MSTATS: {
        Sentra__V1__GetStatisticsRequest r = SENTRA__V1__GET_STATISTICS_REQUEST__INIT;
        Sentra__V1__GroupBy g = SENTRA__V1__GROUP_BY__GROUP_BY_SIZE_CLASS;
        r.group_by = &g;
        r.n_group_by = 1;
        r.subject = SENTRA__V1__STATS_SUBJECT__STATS_SUBJECT_MEMBERS;
        *payload = pack_msg(&r.base, plen);
        return "/sentra.v1.StatsService/GetStatistics";
    }
    case W_STREAM: {
        Sentra__V1__StreamChangesRequest r = SENTRA__V1__STREAM_CHANGES_REQUEST__INIT;
        r.cursor = "";
        r.limit = opt.page_size > 0 ? opt.page_size : 0;
        if (opt.all_kinds) {
            r.kinds = all_kinds;
            r.n_kinds = 5;
        }
        *payload = pack_msg(&r.base, plen);
        return "/sentra.v1.SyncService/StreamChanges";
    }
    case W_PUSH: {
        int n = opt.batch;
        Sentra__V1__PushChangesRequest r = SENTRA__V1__PUSH_CHANGES_REQUEST__INIT;
        Sentra__V1__Mutation *ms = calloc((size_t)n, sizeof(*ms));
        Sentra__V1__Mutation **mp = calloc((size_t)n, sizeof(*mp));
        Sentra__V1__Sentra *ss = calloc((size_t)n, sizeof(*ss));
        Sentra__V1__Figures *fs = calloc((size_t)n, sizeof(*fs));
        Sentra__V1__Figures **fp = calloc((size_t)n, sizeof(*fp));
        char (*strs)[4][48] = calloc((size_t)n, sizeof(*strs));
        char client_id[32];
        if (!ms || !mp || !ss || !fs || !fp || !strs)
            die("out of memory");
        snprintf(client_id, sizeof(client_id), "loadgen-%d", c->index);
        for (int i = 0; i < n; i++) {
            Sentra__V1__Mutation m = SENTRA__V1__MUTATION__INIT;
            Sentra__V1__Sentra s = SENTRA__V1__SENTRA__INIT;
            Sentra__V1__Figures f = SENTRA__V1__FIGURES__INIT;
            uuid4(c, strs[i][0]);
            uuid4(c, strs[i][1]);
            snprintf(strs[i][2], 48, "Sentra Bench %08" PRIx64, rnd(c) & 0xffffffff);
            s.id = strs[i][0];
            s.regency_code = regions[rnd(c) % nregions];
            s.name = strs[i][2];
            s.commodity = "Keripik pisang";
            s.main_product = "Keripik";
            s.kbli_code = "10792";
            s.kbli_version = SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
            s.sector_group = SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_FOOD;
            s.status = SENTRA__V1__STATUS__STATUS_FORMED;
            s.formed_on = "2021-03-15";
            f.year = 2024;
            f.business_units = 12;
            f.workers_male = 20;
            f.workers_female = 31;
            f.investment = 250000000;
            f.production_value = 900000000;
            ss[i] = s;
            fs[i] = f;
            fp[i] = &fs[i];
            ss[i].figures = &fp[i];
            ss[i].n_figures = 1;
            m.mutation_id = strs[i][1];
            m.op = SENTRA__V1__MUTATION_OP__MUTATION_OP_UPSERT;
            m.sentra = &ss[i];
            ms[i] = m;
            mp[i] = &ms[i];
        }
        r.client_id = client_id;
        r.mutations = mp;
        r.n_mutations = (size_t)n;
        *payload = pack_msg(&r.base, plen);
        free(ms);
        free(mp);
        free(ss);
        free(fs);
        free(fp);
        free(strs);
        *records = n;
        return "/sentra.v1.SyncService/PushChanges";
    }
    }
    return NULL;
}

/* ---------------------------------------------------------------- writing */

static void on_written(uv_write_t *req, int status)
{
    free(req);
}

static void write_raw(struct client *c, const uint8_t *p, size_t len);

/* The records the TLS session has ready, to the socket. */
static void tls_flush(struct client *c)
{
    uint8_t buf[65536];
    int n;
    while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0)
        write_raw(c, buf, (size_t)n);
}

static void write_bytes(struct client *c, const uint8_t *p, size_t len)
{
    if (c->ssl != NULL) {
        if (SSL_write(c->ssl, p, (int)len) != (int)len)
            die("client %d: SSL_write failed", c->index);
        tls_flush(c);
        return;
    }
    write_raw(c, p, len);
}

static void write_raw(struct client *c, const uint8_t *p, size_t len)
{
    /* Requests are small: the kernel takes them at once almost always. */
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    int n = uv_try_write(c->stream, &b, 1);
    if (n == (int)len)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        if (!stopping)
            fprintf(stderr, "loadgen: client %d: write: %s\n", c->index, uv_strerror(n));
        return;
    }
    size_t off = n > 0 ? (size_t)n : 0;
    struct wreq *w = malloc(sizeof(*w) + len - off);
    if (w == NULL)
        die("out of memory");
    memcpy(w->data, p + off, len - off);
    b = uv_buf_init((char *)w->data, (unsigned)(len - off));
    if (uv_write(&w->req, c->stream, &b, 1, on_written) != 0)
        free(w);
}

static void client_send_next(struct client *c)
{
    if (stopping)
        return;
    if (opt.count > 0 && sent_total >= opt.count)
        return;
    int slot = -1;
    for (int i = 0; i < opt.depth; i++)
        if (c->slots[i].stream_id == 0) {
            slot = i;
            break;
        }
    if (slot < 0)
        return;

    uint8_t *payload = NULL;
    size_t plen = 0;
    int records = 0;
    const char *method = build_request(c, &payload, &plen, &records);

    Sentra__V1__Request r = SENTRA__V1__REQUEST__INIT;
    r.method = (char *)method;
    r.timeout_ms = opt.wl == W_STREAM ? 0 : (uint32_t)opt.timeout_ms;
    if (opt.token != NULL) {
        r.metadata = auth_mds;
        r.n_metadata = 1;
    }
    r.payload.data = payload;
    r.payload.len = plen;
    size_t len = sentra__v1__request__get_packed_size(&r);
    if (c->wcap < SENTRA_FRAME_HEADER_LEN + len) {
        c->wcap = SENTRA_FRAME_HEADER_LEN + len + 256;
        c->wbuf = realloc(c->wbuf, c->wcap);
        if (c->wbuf == NULL)
            die("out of memory");
    }
    sentra__v1__request__pack(&r, c->wbuf + SENTRA_FRAME_HEADER_LEN);
    free(payload);
    uint32_t sid = ++c->next_stream;
    sentra_frame_header(c->wbuf, SENTRA_FRAME_REQUEST, 0, sid, (uint32_t)len);
    c->slots[slot].stream_id = sid;
    c->slots[slot].sent_ns = uv_hrtime();
    c->slots[slot].records = records;
    c->inflight++;
    sent_total++;
    write_bytes(c, c->wbuf, SENTRA_FRAME_HEADER_LEN + len);
}

/* ---------------------------------------------------------------- reading */

static void maybe_finish(void)
{
    if (opt.count > 0 && sent_total >= opt.count) {
        for (int i = 0; i < opt.clients; i++)
            if (clients[i].inflight > 0)
                return;
        stop_all();
    }
}

static void on_response(struct client *c, const sentra_frame_t *f)
{
    int slot = -1;
    for (int i = 0; i < opt.depth; i++)
        if (c->slots[i].stream_id == f->stream_id) {
            slot = i;
            break;
        }
    if (slot < 0) {
        fprintf(stderr, "loadgen: client %d: response for unknown stream %u\n", c->index, f->stream_id);
        return;
    }
    if (opt.wl == W_STREAM && (f->flags & SENTRA_FRAME_F_MORE)) {
        /* One message of the stream: its records count as they come. */
        Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, f->length, f->payload);
        Sentra__V1__StreamChangesResponse *m =
            r ? sentra__v1__stream_changes_response__unpack(&arena_allocator, r->payload.len, r->payload.data)
              : NULL;
        if (m == NULL) {
            if (errors_printed++ < 5)
                fprintf(stderr, "loadgen: undecodable stream message\n");
        } else {
            if (measuring)
                records_done += (long)(m->n_changes + m->n_records);
            if (!m->more && !c->slots[slot].cancelled) {
                /* Caught up: a pass is done; end it and start another. */
                uint8_t hdr[SENTRA_FRAME_HEADER_LEN];
                sentra_frame_header(hdr, SENTRA_FRAME_CANCEL, 0, f->stream_id, 0);
                write_bytes(c, hdr, sizeof hdr);
                c->slots[slot].cancelled = 1;
                if (measuring)
                    pull_passes++;
            }
            sentra__v1__stream_changes_response__free_unpacked(m, &arena_allocator);
        }
        arena_reset();
        if (r != NULL)
            sentra__v1__response__free_unpacked(r, NULL);
        return;
    }
    uint64_t lat = uv_hrtime() - c->slots[slot].sent_ns;
    int records = c->slots[slot].records;
    int cancelled = c->slots[slot].cancelled;
    c->slots[slot].stream_id = 0;
    c->slots[slot].cancelled = 0;
    c->inflight--;
    if (opt.wl == W_IDLE) {
        /* The one Ping of an idle connection; then it stays silent. Our
         * side's TLS session goes (10,000 of them would weigh on this
         * process); the server's stays, which is what is measured. */
        if (c->ssl != NULL) {
            SSL_set_quiet_shutdown(c->ssl, 1);
            SSL_free(c->ssl);
            c->ssl = NULL;
            c->tls_dropped = 1;
        }
        if (!measuring)
            idle_ping_done();
        return;
    }
    if (opt.wl == W_HANDSHAKE) {
        /* Connected, shook hands, answered: count it, close, go again. */
        if (measuring) {
            done_ok++;
            record_latency(uv_hrtime() - c->started_ns);
        }
        client_close(c);
        return;
    }

    Sentra__V1__Response *r = sentra__v1__response__unpack(NULL, f->length, f->payload);
    int ok = r != NULL && (r->code == SENTRA__V1__CODE__OK ||
                           (cancelled && r->code == SENTRA__V1__CODE__CANCELLED));
    if (!ok && errors_printed < 5 && !stopping) {
        errors_printed++;
        fprintf(stderr, "loadgen: error: %s %s\n",
                r ? protobuf_c_enum_descriptor_get_value(&sentra__v1__code__descriptor, r->code)->name
                  : "undecodable response",
                r && r->message ? r->message : "");
    }
    if (ok && opt.wl == W_PULL) {
        Sentra__V1__PullChangesResponse *p =
            sentra__v1__pull_changes_response__unpack(&arena_allocator, r->payload.len, r->payload.data);
        if (p == NULL) {
            ok = 0;
        } else {
            records = (int)(p->n_changes + p->n_records);
            c->pull_records += (long)(p->n_changes + p->n_records);
            free(c->cursor);
            c->cursor = NULL;
            if (p->more && p->next_cursor && p->next_cursor[0]) {
                c->cursor = strdup(p->next_cursor);
            } else {
                /* A full pass ended: start again from the beginning. */
                if (measuring)
                    pull_passes++;
                c->pull_records = 0;
            }
            sentra__v1__pull_changes_response__free_unpacked(p, &arena_allocator);
            arena_reset();
        }
    }
    if (ok && opt.wl == W_PUSH) {
        Sentra__V1__PushChangesResponse *p =
            sentra__v1__push_changes_response__unpack(NULL, r->payload.len, r->payload.data);
        int applied = 0;
        if (p != NULL) {
            for (size_t i = 0; i < p->n_results; i++) {
                if (p->results[i]->outcome == SENTRA__V1__MUTATION_OUTCOME__MUTATION_OUTCOME_APPLIED)
                    applied++;
                else if (errors_printed < 5) {
                    errors_printed++;
                    fprintf(stderr, "loadgen: mutation not applied: outcome %d %s %s\n",
                            p->results[i]->outcome,
                            p->results[i]->n_violations ? p->results[i]->violations[0]->field : "",
                            p->results[i]->n_violations ? p->results[i]->violations[0]->description : "");
                }
            }
            sentra__v1__push_changes_response__free_unpacked(p, NULL);
        }
        if (applied < records)
            ok = 0;
        records = applied;
    }
    if (r != NULL)
        sentra__v1__response__free_unpacked(r, NULL);

    if (measuring) {
        if (ok)
            done_ok++;
        else
            done_err++;
        records_done += records;
        record_latency(lat);
    }
    client_send_next(c);
    maybe_finish();
}

static uint8_t cipher_buf[65536];   /* TLS reads land here, then go through the session */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client *c = h->data;
    if (c->ssl != NULL || c->tls_dropped) {
        buf->base = (char *)cipher_buf;
        buf->len = sizeof(cipher_buf);
        return;
    }
    if (c->rcap - c->rlen < 65536) {
        c->rcap = c->rcap ? c->rcap * 2 : 131072;
        c->rbuf = realloc(c->rbuf, c->rcap);
        if (c->rbuf == NULL)
            die("out of memory");
    }
    buf->base = (char *)c->rbuf + c->rlen;
    buf->len = c->rcap - c->rlen;
}

static void client_start(struct client *c);

static void on_close(uv_handle_t *h)
{
    struct client *c = h->data;
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (opt.wl == W_HANDSHAKE && !stopping) {
        /* The next connection of this client. */
        c->closed = 0;
        c->rlen = 0;
        c->tls_ready = 0;
        client_start(c);
    }
}

static void client_close(struct client *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (opt.wl == W_HANDSHAKE && opt.unix_path == NULL) {
        /* A reset, not a FIN: thousands of connections a second must not
         * leave this side's ports in TIME_WAIT. */
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)c->stream, &fd) == 0) {
            struct linger lg = { 1, 0 };
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
    }
    uv_close((uv_handle_t *)c->stream, on_close);
}

static void connected(struct client *c);
static void connected_check(void);
static void idle_next(void);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (nread > 0 && c->tls_dropped)
        return;     /* idle, our session gone: what comes is not read */
    if (nread > 0 && c->ssl != NULL) {
        /* Ciphertext: through the session into rbuf. */
        BIO_write(c->rbio, buf->base, (int)nread);
        if (!c->tls_ready) {
            int r = SSL_do_handshake(c->ssl);
            tls_flush(c);
            if (r != 1) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    return;
                char err[256];
                ERR_error_string_n(ERR_get_error(), err, sizeof(err));
                die("client %d: TLS handshake failed: %s", c->index, err);
            }
            c->tls_ready = 1;
            if (SSL_session_reused(c->ssl) && (measuring || opt.wl != W_HANDSHAKE))
                tls_resumed++;
            connected(c);
            if (c->closed)
                return;
        }
        nread = 0;
        for (;;) {
            if (c->rcap - c->rlen < 65536) {
                c->rcap = c->rcap ? c->rcap * 2 : 131072;
                if ((c->rbuf = realloc(c->rbuf, c->rcap)) == NULL)
                    die("out of memory");
            }
            int n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
            if (n <= 0)
                break;
            c->rlen += (size_t)n;
        }
        tls_flush(c);
    }
    if (nread < 0) {
        if (!stopping)
            fprintf(stderr, "loadgen: client %d: connection closed by the server (%s)\n", c->index,
                    uv_strerror((int)nread));
        if (measuring)
            done_err += c->inflight;
        for (int i = 0; i < opt.depth; i++)
            c->slots[i].stream_id = 0;
        c->inflight = 0;
        client_close(c);
        maybe_finish();
        return;
    }
    c->rlen += (size_t)nread;
    size_t off = 0;
    while (off < c->rlen && !c->closed) {
        sentra_frame_t f;
        size_t used;
        int r = sentra_frame_decode(c->rbuf + off, c->rlen - off, 64u << 20, &f, &used);
        if (r == SENTRA_FRAME_NEED_MORE)
            break;
        if (r != SENTRA_FRAME_OK)
            die("client %d: bad frame from the server: %s", c->index, sentra_frame_strerror(r));
        off += used;
        if (f.type == SENTRA_FRAME_RESPONSE) {
            on_response(c, &f);
        } else if (f.type == SENTRA_FRAME_PING) {
            uint8_t pong[SENTRA_FRAME_HEADER_LEN + SENTRA_PING_MAX_PAYLOAD];
            sentra_frame_header(pong, SENTRA_FRAME_PONG, 0, 0, f.length);
            memcpy(pong + SENTRA_FRAME_HEADER_LEN, f.payload, f.length);
            write_bytes(c, pong, SENTRA_FRAME_HEADER_LEN + f.length);
        } else if (f.type == SENTRA_FRAME_GOAWAY && !stopping) {
            fprintf(stderr, "loadgen: client %d: GOAWAY from the server\n", c->index);
        }
        if (c->closed)
            return;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

/* ---------------------------------------------------------------- connecting */

static void start_measuring(void)
{
    measuring = 1;
    t_measure_ns = uv_hrtime();
}

static void on_warm(uv_timer_t *t)
{
    start_measuring();
}

static void on_end(uv_timer_t *t)
{
    stop_all();
}

static void begin_run(void)
{
    t_start_ns = uv_hrtime();
    if (opt.wl == W_IDLE) {
        start_measuring();
        fprintf(stderr, "loadgen: %d idle connections open\n", connected_count);
        fflush(stderr);
        uv_timer_start(&end_timer, on_end, (uint64_t)(opt.duration * 1000), 0);
        return;
    }
    if (opt.warmup > 0)
        uv_timer_start(&warm_timer, on_warm, (uint64_t)(opt.warmup * 1000), 0);
    else
        start_measuring();
    if (opt.duration > 0)
        uv_timer_start(&end_timer, on_end, (uint64_t)((opt.warmup + opt.duration) * 1000), 0);
    for (int i = 0; i < opt.clients; i++)
        if (clients[i].connected && !clients[i].closed)
            for (int d = 0; d < opt.depth; d++)
                client_send_next(&clients[i]);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    if (stopping) {
        /* The run ended while this one was connecting. */
        if (status == 0)
            client_close(c);
        return;
    }
    if (status != 0) {
        connect_failures++;
        if (connect_failures <= 3)
            fprintf(stderr, "loadgen: client %d: connect: %s\n", c->index, uv_strerror(status));
        if (opt.wl == W_HANDSHAKE)
            die("client %d: connect: %s", c->index, uv_strerror(status));
        client_close(c);
        if (opt.wl == W_IDLE) {
            idle_next();
            return;
        }
    } else if (opt.tls && opt.unix_path == NULL) {
        c->ssl = SSL_new(tls_ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL)
            die("out of memory");
        BIO_set_mem_eof_return(c->rbio, -1);
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_connect_state(c->ssl);
        SSL_set_alpn_protos(c->ssl, (const unsigned char *)"\x08sentra/1", 9);
        SSL_set_tlsext_host_name(c->ssl, "localhost");
        if (tls_session != NULL)
            SSL_set_session(c->ssl, tls_session);
        uv_read_start(c->stream, on_alloc, on_read);
        SSL_do_handshake(c->ssl);   /* the ClientHello */
        tls_flush(c);
        return;                     /* connected() after the handshake */
    } else {
        uv_read_start(c->stream, on_alloc, on_read);
    }
    if (status == 0)
        connected(c);
    else
        connected_check();
}

static void connected_check(void)
{
    if (stopping)
        return;
    if (connected_count + connect_failures < opt.clients)
        return;
    if (connected_count == 0)
        die("no connection could be made");
    if (opt.wl == W_HANDSHAKE)
        return;
    if (opt.wl == W_IDLE) {
        /* One Ping each, so that every connection is accepted and served. */
        for (int i = 0; i < opt.clients; i++)
            if (clients[i].connected)
                client_send_next(&clients[i]);
        return;
    }
    begin_run();
}

/* A connection is up (and its TLS handshake done). */
static void connected(struct client *c)
{
    if (opt.wl == W_HANDSHAKE) {
        /* Straight to its one Ping. */
        client_send_next(c);
        return;
    }
    if (opt.wl == W_IDLE) {
        /* Its one Ping now; the next connection starts when it is answered
         * (IDLE_BATCH at a time: thousands of TLS handshakes at once
         * would run into the server's handshake deadline). */
        c->connected = 1;
        connected_count++;
        client_send_next(c);
        return;
    }
    c->connected = 1;
    connected_count++;
    connected_check();
}

static long idle_pinged;

/* Starts the next idle connection, or the run when all are set up. */
static void idle_next(void)
{
    if (stopping)
        return;
    if (next_client < opt.clients) {
        client_start(&clients[next_client++]);
        return;
    }
    if (idle_pinged + connect_failures == opt.clients) {
        if (idle_pinged == 0)
            die("no connection could be made");
        begin_run();
    }
}

static void idle_ping_done(void)
{
    idle_pinged++;
    idle_next();
}

static void stop_all(void)
{
    if (stopping)
        return;
    stopping = 1;
    t_end_ns = uv_hrtime();
    uv_timer_stop(&end_timer);
    uv_timer_stop(&warm_timer);
    uv_close((uv_handle_t *)&end_timer, NULL);
    uv_close((uv_handle_t *)&warm_timer, NULL);
    for (int i = 0; i < opt.clients; i++)
        if (!clients[i].closed)
            client_close(&clients[i]);
}

/* ---------------------------------------------------------------- report */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (nlat == 0)
        return 0;
    size_t i = (size_t)(p * (double)(nlat - 1) + 0.5);
    return lat_us[i] / 1000.0;
}

static void report(void)
{
    double secs = (double)(t_end_ns - t_measure_ns) / 1e9;
    if (!measuring || secs <= 0)
        secs = 0;
    qsort(lat_us, nlat, sizeof(*lat_us), cmp_u32);
    long total = done_ok + done_err;
    printf("workload=%s clients=%d depth=%d seconds=%.3f requests=%ld errors=%ld rps=%.1f "
           "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f records=%ld records_per_s=%.1f passes=%ld "
           "connected=%d tls=%d resumed=%ld\n",
           workload_names[opt.wl], opt.clients, opt.depth, secs, total, done_err,
           secs > 0 ? (double)done_ok / secs : 0, pct(0.50), pct(0.99),
           nlat ? lat_us[nlat - 1] / 1000.0 : 0, records_done,
           secs > 0 ? (double)records_done / secs : 0, pull_passes, connected_count, opt.tls, tls_resumed);
    fflush(stdout);
}

/* ---------------------------------------------------------------- connections */

static void client_start(struct client *c)
{
    c->connect_req.data = c;
    c->started_ns = uv_hrtime();
    if (opt.unix_path != NULL) {
        uv_pipe_init(loop, &c->pipe, 0);
        c->stream = (uv_stream_t *)&c->pipe;
        c->stream->data = c;
        uv_pipe_connect(&c->connect_req, &c->pipe, opt.unix_path, on_connect);
        return;
    }
    uv_tcp_init(loop, &c->tcp);
    c->stream = (uv_stream_t *)&c->tcp;
    c->stream->data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    int r = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&server_sa, on_connect);
    if (r != 0) {
        /* Reported like a failed connect, from the loop. */
        connect_failures++;
        if (connect_failures <= 3)
            fprintf(stderr, "loadgen: client %d: connect: %s\n", c->index, uv_strerror(r));
        if (opt.wl == W_HANDSHAKE)
            die("client %d: connect: %s", c->index, uv_strerror(r));
        c->closed = 1;
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

/* --resume: one blocking connection before the run, for its session (a
 * TLS 1.3 ticket comes after the handshake: one Ping brings it). */
static SSL_SESSION *first_session(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&server_sa, sizeof(server_sa)) != 0)
        die("connect for the first TLS session: %s", strerror(errno));
    SSL *ssl = SSL_new(tls_ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_alpn_protos(ssl, (const unsigned char *)"\x08sentra/1", 9);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (SSL_connect(ssl) != 1)
        die("the first TLS handshake failed");
    uint8_t f[SENTRA_FRAME_HEADER_LEN + 4], in[256];
    sentra_frame_header(f, SENTRA_FRAME_PING, 0, 0, 4);
    memcpy(f + SENTRA_FRAME_HEADER_LEN, "sess", 4);
    if (SSL_write(ssl, f, sizeof(f)) != (int)sizeof(f))
        die("the first TLS connection: write failed");
    size_t got = 0;
    while (got < sizeof(f)) {
        int n = SSL_read(ssl, in + got, (int)(sizeof(in) - got));
        if (n <= 0)
            die("the first TLS connection: no PONG");
        got += (size_t)n;
    }
    SSL_SESSION *sess = SSL_get1_session(ssl);
    if (sess == NULL || !SSL_SESSION_is_resumable(sess))
        die("the server gave no resumable session");
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    return sess;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen [options]\n"
            "  -w, --workload W     ping|get|list|stats|push|pull|idle|stream (default ping)\n"
            "  -H, --host H         server address (default 127.0.0.1)\n"
            "  -p, --port P         server port\n"
            "  -u, --unix PATH      connect to a Unix socket instead\n"
            "  -c, --clients C      connections (default 16)\n"
            "  -d, --depth D        requests in flight per connection (default 1)\n"
            "  -t, --duration S     seconds to measure (default 5)\n"
            "  -n, --count N        total requests instead of a duration\n"
            "      --warmup S       seconds run before measuring (default 0)\n"
            "  -T, --token SECRET   bearer token\n"
            "      --ids FILE       get: sentra ids, one a line\n"
            "      --regions FILE   push: regency codes the token may write; list: provinces;\n"
            "                       members: regencies\n"
            "      --batch B        push: mutations per request (default 100)\n"
            "      --page-size N    list, members, pull and stream page size\n"
            "      --kinds all      pull and stream: records of every kind, not only sentra\n"
            "      --timeout-ms MS  request deadline (default 30000)\n"
            "      --tls            TLS on TCP (ALPN sentra/1)\n"
            "      --resume         every connection resumes one session (TLS tickets)\n"
            "      --ca FILE        verify the server's certificate with this CA\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "workload", required_argument, NULL, 'w' }, { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },     { "unix", required_argument, NULL, 'u' },
        { "clients", required_argument, NULL, 'c' },  { "depth", required_argument, NULL, 'd' },
        { "duration", required_argument, NULL, 't' }, { "count", required_argument, NULL, 'n' },
        { "warmup", required_argument, NULL, 1 },     { "token", required_argument, NULL, 'T' },
        { "ids", required_argument, NULL, 2 },        { "regions", required_argument, NULL, 3 },
        { "batch", required_argument, NULL, 4 },      { "page-size", required_argument, NULL, 5 },
        { "timeout-ms", required_argument, NULL, 6 }, { "help", no_argument, NULL, 'h' },
        { "tls", no_argument, NULL, 7 },              { "resume", no_argument, NULL, 8 },
        { "ca", required_argument, NULL, 9 },         { "kinds", required_argument, NULL, 10 },
        { NULL, 0, NULL, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "w:H:p:u:c:d:t:n:T:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'w': {
            int found = 0;
            for (int i = 0; i <= W_HANDSHAKE; i++)
                if (strcmp(optarg, workload_names[i]) == 0) {
                    opt.wl = (enum workload)i;
                    found = 1;
                }
            if (!found)
                die("unknown workload \"%s\"", optarg);
            break;
        }
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'u': opt.unix_path = optarg; break;
        case 'c': opt.clients = atoi(optarg); break;
        case 'd': opt.depth = atoi(optarg); break;
        case 't': opt.duration = atof(optarg); break;
        case 'n': opt.count = atol(optarg); opt.duration = 0; break;
        case 1: opt.warmup = atof(optarg); break;
        case 'T': opt.token = optarg; break;
        case 2: opt.ids_file = optarg; break;
        case 3: opt.regions_file = optarg; break;
        case 4: opt.batch = atoi(optarg); break;
        case 5: opt.page_size = atoi(optarg); break;
        case 6: opt.timeout_ms = atoi(optarg); break;
        case 7: opt.tls = 1; break;
        case 8: opt.resume = 1; break;
        case 9: opt.ca = optarg; break;
        case 10:
            if (strcmp(optarg, "all") != 0)
                die("--kinds takes \"all\"");
            opt.all_kinds = 1;
            break;
        default: usage();
        }
    }
    if (opt.port <= 0 && opt.unix_path == NULL)
        die("--port or --unix is required");
    if (opt.clients < 1 || opt.depth < 1 || opt.batch < 1)
        die("--clients, --depth and --batch must be at least 1");
    if (opt.duration <= 0 && opt.count <= 0)
        die("give --duration or --count");
    if (opt.wl == W_GET) {
        if (opt.ids_file == NULL)
            die("the get workload needs --ids FILE");
        ids = read_lines(opt.ids_file, &nids);
    }
    if (opt.regions_file != NULL)
        regions = read_lines(opt.regions_file, &nregions);
    if ((opt.wl == W_PUSH || opt.wl == W_MEMBERS) && nregions == 0)
        die("the push and members workloads need --regions FILE");
    if (opt.wl == W_PULL || opt.wl == W_STREAM)
        opt.depth = 1; /* a pull follows its cursor */
    if (opt.wl == W_IDLE || opt.wl == W_HANDSHAKE)
        opt.depth = 1;
    if (opt.resume && !opt.tls)
        die("--resume needs --tls");
    if (opt.token != NULL) {
        snprintf(auth_value, sizeof(auth_value), "Bearer %s", opt.token);
        auth_md.key = "authorization";
        auth_md.value = auth_value;
    }

    /* Many connections need many descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)opt.clients + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    loop = uv_default_loop();
    uv_timer_init(loop, &end_timer);
    uv_timer_init(loop, &warm_timer);
    clients = calloc((size_t)opt.clients, sizeof(*clients));
    if (clients == NULL)
        die("out of memory");
    if (opt.unix_path == NULL && uv_ip4_addr(opt.host, opt.port, &server_sa) != 0)
        die("bad address %s", opt.host);
    if (opt.tls) {
        tls_ctx = SSL_CTX_new(TLS_client_method());
        if (tls_ctx == NULL)
            die("SSL_CTX_new failed");
        SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
        if (opt.ca != NULL) {
            if (SSL_CTX_load_verify_locations(tls_ctx, opt.ca, NULL) != 1)
                die("cannot load the CA file %s", opt.ca);
            SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
        }
        if (opt.resume)
            tls_session = first_session();
    }
    for (int i = 0; i < opt.clients; i++) {
        struct client *c = &clients[i];
        c->index = i;
        c->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)i * 0x100000001B3ULL) ^ (uint64_t)time(NULL);
        if (c->rng == 0)
            c->rng = 1;
        c->slots = calloc((size_t)opt.depth, sizeof(*c->slots));
        if (c->slots == NULL)
            die("out of memory");
    }
    next_client = opt.wl == W_IDLE && opt.clients > IDLE_BATCH ? IDLE_BATCH : opt.clients;
    for (int i = 0; i < next_client; i++)
        client_start(&clients[i]);
    if (connect_failures == opt.clients)
        die("no connection could be made");
    if (opt.wl == W_HANDSHAKE) {
        /* Each client connects again and again; the clock starts now. */
        t_start_ns = uv_hrtime();
        if (opt.warmup > 0)
            uv_timer_start(&warm_timer, on_warm, (uint64_t)(opt.warmup * 1000), 0);
        else
            start_measuring();
        uv_timer_start(&end_timer, on_end, (uint64_t)((opt.warmup + opt.duration) * 1000), 0);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    if (!stopping)
        t_end_ns = uv_hrtime();
    report();
    return done_ok > 0 || opt.wl == W_IDLE ? 0 : 1;
}
