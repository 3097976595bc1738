/*
 * records.c: the kinds of record attached to a sentra, and their messages
 * to and from PostgreSQL (see records.h for the one mapping rule).
 *
 * Everything here walks protobuf-c's descriptors, so a field added to a
 * record message needs only its column in the table and the views of its
 * migration (and its rule in validate_records.c): no list of columns to
 * keep in step in C.
 */
#include "records.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sentra_row.h"
#include "validate_records.h"

/* ---------------------------------------------------------------- the kinds */

static int v_member(validate_ctx_t *vc, const ProtobufCMessage *m, uint64_t f, unsigned how)
{
    return validate_member(vc, (const Sentra__V1__Member *)m, f, how);
}

static int v_institution(validate_ctx_t *vc, const ProtobufCMessage *m, uint64_t f, unsigned how)
{
    (void)f;
    (void)how;
    return validate_institution(vc, (const Sentra__V1__Institution *)m);
}

static int v_obstacle(validate_ctx_t *vc, const ProtobufCMessage *m, uint64_t f, unsigned how)
{
    return validate_obstacle(vc, (const Sentra__V1__Obstacle *)m, f, how);
}

static int v_assistance(validate_ctx_t *vc, const ProtobufCMessage *m, uint64_t f, unsigned how)
{
    return validate_assistance(vc, (const Sentra__V1__Assistance *)m, f, how);
}

const rec_kind_t rec_member = {
    SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER, "member", &sentra__v1__member__descriptor,
    "id", "name", "text", &sentra__v1__list_members_response__descriptor, v_member,
};
const rec_kind_t rec_institution = {
    SENTRA__V1__RECORD_KIND__RECORD_KIND_INSTITUTION, "institution",
    &sentra__v1__institution__descriptor, "sentra_id", NULL, NULL,
    &sentra__v1__list_institutions_response__descriptor, v_institution,
};
const rec_kind_t rec_obstacle = {
    SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE, "obstacle", &sentra__v1__obstacle__descriptor,
    "id", "reported_on", "date", &sentra__v1__list_obstacles_response__descriptor, v_obstacle,
};
const rec_kind_t rec_assistance = {
    SENTRA__V1__RECORD_KIND__RECORD_KIND_ASSISTANCE, "assistance",
    &sentra__v1__assistance__descriptor, "id", "year", "smallint",
    &sentra__v1__list_assistance_response__descriptor, v_assistance,
};

const rec_kind_t *rec__kind(int k)
{
    switch (k) {
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER: return &rec_member;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_INSTITUTION: return &rec_institution;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE: return &rec_obstacle;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_ASSISTANCE: return &rec_assistance;
    }
    return NULL;
}

/* ---------------------------------------------------------------- columns */

/* Fills out[REC_MAX_COLS] with the columns of k; returns how many. */
static size_t build_cols(const rec_kind_t *k, rec_col_t *out)
{
    const ProtobufCMessageDescriptor *d = k->desc;
    size_t n = 0;

    for (unsigned i = 0; i < d->n_fields && n < REC_MAX_COLS; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        int out_only = validate_record_output_only(f->name);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
            /* A nested message: its fields in its place (one level). */
            const ProtobufCMessageDescriptor *sub = f->descriptor;
            for (unsigned j = 0; j < sub->n_fields && n < REC_MAX_COLS; j++) {
                rec_col_t *c = &out[n++];
                snprintf(c->name, sizeof c->name, "%s_%s", f->name, sub->fields[j].name);
                snprintf(c->path, sizeof c->path, "%s.%s", f->name, sub->fields[j].name);
                c->outer = f;
                c->leaf = &sub->fields[j];
                c->top = f->id;
                c->out = out_only;
            }
            continue;
        }
        rec_col_t *c = &out[n++];
        snprintf(c->name, sizeof c->name, "%s", f->name);
        snprintf(c->path, sizeof c->path, "%s", f->name);
        c->outer = NULL;
        c->leaf = f;
        c->top = f->id;
        c->out = out_only;
    }
    return n;
}

/* The columns of every kind, built once: they follow from the descriptors
 * alone, and building them (two snprintf and a name lookup a column) cost
 * more than the rest of reading a row did when done per row. */
static struct {
    rec_col_t cols[REC_MAX_COLS];
    size_t n;
} kind_cols[6];                     /* by RecordKind number; 2..5 used */
static pthread_once_t kind_cols_once = PTHREAD_ONCE_INIT;

static void build_kind_cols(void)
{
    for (int kind = 0; kind < 6; kind++) {
        const rec_kind_t *k = rec__kind(kind);
        if (k)
            kind_cols[kind].n = build_cols(k, kind_cols[kind].cols);
    }
}

const rec_col_t *rec__cols(const rec_kind_t *k, size_t *n)
{
    pthread_once(&kind_cols_once, build_kind_cols);
    *n = kind_cols[k->kind].n;
    return kind_cols[k->kind].cols;
}

/* Where the value of column col lives in m; with create, a nested message
 * missing on the way is made (call memory). NULL when it is missing and
 * create is 0. */
static void *col_ptr(call_t *c, ProtobufCMessage *m, const rec_col_t *col, int create)
{
    char *base = (char *)m;
    if (col->outer) {
        ProtobufCMessage **sub = (ProtobufCMessage **)(base + col->outer->offset);
        if (*sub == NULL) {
            if (!create)
                return NULL;
            const ProtobufCMessageDescriptor *sd = col->outer->descriptor;
            *sub = call_alloc(c, sd->sizeof_message);
            protobuf_c_message_init(sd, *sub);
        }
        base = (char *)*sub;
    }
    return base + col->leaf->offset;
}

static int is_kbli_version(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_ENUM && f->descriptor == &sentra__v1__kbli_version__descriptor;
}

/* ---------------------------------------------------------------- writing */

/* A growing buffer (malloc'ed: its text is copied into call memory at the
 * end). Aborts on OOM, as call_alloc does. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void b_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        abort();
    b->p = p;
    b->cap = cap;
}

static void b_add(buf_t *b, const char *s)
{
    size_t n = strlen(s);
    b_reserve(b, n);
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void b_json_str(buf_t *b, const char *s)
{
    b_reserve(b, 6 * strlen(s) + 2);
    int n = sentra__json_string(b->p, b->cap, b->len, s);
    if (n < 0)
        abort();                /* cannot happen: 6 bytes reserved per byte */
    b->len = (size_t)n;
}

/* The JSON value of column col of m. */
static void json_value(buf_t *b, const ProtobufCMessage *m, const rec_col_t *col)
{
    const void *p = col_ptr(NULL, (ProtobufCMessage *)m, col, 0);
    const ProtobufCFieldDescriptor *f = col->leaf;
    char num[32];

    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        /* repeated string: an array (its count sits in the message that
         * holds the field) */
        const char *owner = col->outer
            ? *(const char *const *)((const char *)m + col->outer->offset) : (const char *)m;
        size_t n = owner ? *(const size_t *)(owner + f->quantifier_offset) : 0;
        char *const *v = n ? *(char *const *const *)p : NULL;
        b_add(b, "[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                b_add(b, ",");
            b_json_str(b, v[i] ? v[i] : "");
        }
        b_add(b, "]");
        return;
    }
    if (p == NULL) {
        b_add(b, "null");
        return;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        if (s == NULL || s[0] == '\0')
            b_add(b, "null");
        else
            b_json_str(b, s);
        return;
    }
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_INT32: {
        int32_t v = *(const int32_t *)p;
        if (v == 0) {
            b_add(b, "null");           /* unspecified, or an absent year */
            return;
        }
        if (is_kbli_version(f))
            v = sentra__kbli_year(v);
        if (v == 0) {
            b_add(b, "null");           /* an edition this server does not know */
            return;
        }
        snprintf(num, sizeof num, "%d", (int)v);
        b_add(b, num);
        return;
    }
    case PROTOBUF_C_TYPE_INT64:
        snprintf(num, sizeof num, "%lld", (long long)*(const int64_t *)p);
        b_add(b, num);
        return;
    case PROTOBUF_C_TYPE_BOOL:
        b_add(b, *(const protobuf_c_boolean *)p ? "true" : "false");
        return;
    default:
        b_add(b, "null");               /* no record field has another type */
        return;
    }
}

char *rec__json(call_t *c, const rec_kind_t *k, const ProtobufCMessage *m, uint64_t fields,
                int keys, const char **mask)
{
    size_t n;
    const rec_col_t *cols = rec__cols(k, &n);
    buf_t b = {0}, mb = {0};

    b_add(&b, "{");
    b_add(&mb, "{");
    for (size_t i = 0, w = 0; i < n; i++) {
        if (cols[i].out || !(cols[i].top < 64 && (fields & (UINT64_C(1) << cols[i].top))))
            continue;
        if (!keys && (strcmp(cols[i].name, "id") == 0 || strcmp(cols[i].name, "sentra_id") == 0))
            continue;
        if (w++) {
            b_add(&b, ",");
            b_add(&mb, ",");
        }
        b_json_str(&b, cols[i].name);
        b_add(&b, ":");
        json_value(&b, m, &cols[i]);
        b_add(&mb, cols[i].name);     /* plain identifiers: nothing to quote */
    }
    b_add(&b, "}");
    b_add(&mb, "}");
    char *out = call_strdup(c, b.p);
    if (mask)
        *mask = call_strdup(c, mb.p);
    free(b.p);
    free(mb.p);
    return out;
}

/* ---------------------------------------------------------------- reading */

/* Sets column col of m from its text v (NULL for SQL NULL: the default
 * stays). Strings point at v. */
static void set_col(call_t *c, ProtobufCMessage *m, const rec_col_t *col, char *v)
{
    const ProtobufCFieldDescriptor *f = col->leaf;

    if (v == NULL || v[0] == '\0')
        return;                         /* the message's default: "", 0, none */
    void *p = col_ptr(c, m, col, 1);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t cnt = 1;
        for (const char *q = v; *q; q++)
            cnt += *q == ',';
        char **arr = call_alloc(c, cnt * sizeof *arr);
        size_t i = 0;
        char *save = NULL;
        for (char *t = strtok_r(v, ",", &save); t && i < cnt; t = strtok_r(NULL, ",", &save))
            arr[i++] = t;
        char *owner = col->outer ? *(char **)((char *)m + col->outer->offset) : (char *)m;
        *(size_t *)(owner + f->quantifier_offset) = i;
        *(char ***)p = arr;
        return;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        *(char **)p = v;
        break;
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_INT32: {
        int32_t x = (int32_t)sentra__dec_i64(v);
        *(int32_t *)p = is_kbli_version(f) ? sentra__kbli_enum(x) : x;
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
        *(int64_t *)p = sentra__dec_i64(v);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)p = v[0] == 't';
        break;
    default:
        break;
    }
}

static ProtobufCMessage *new_msg(call_t *c, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = call_alloc(c, d->sizeof_message);
    protobuf_c_message_init(d, m);
    return m;
}

int rec__row_shape(const rec_kind_t *k, const PGresult *res, int first_col)
{
    size_t n;
    const rec_col_t *cols = rec__cols(k, &n);

    if (PQnfields(res) < first_col + (int)n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = PQfname(res, first_col + (int)i);
        if (strcmp(name, cols[i].name) != 0) {
            log_error("record_columns", "kind=%s column=%zu want=%s got=%s", k->name, i,
                      cols[i].name, name);
            return 0;
        }
    }
    return 1;
}

ProtobufCMessage *rec__from_row(call_t *c, const rec_kind_t *k, const PGresult *res, int row,
                                int first_col)
{
    size_t n;
    const rec_col_t *cols = rec__cols(k, &n);

    if (row < 0 || row >= PQntuples(res) || PQnfields(res) < first_col + (int)n)
        return NULL;
    ProtobufCMessage *m = new_msg(c, k->desc);
    for (size_t i = 0; i < n; i++) {
        int col = first_col + (int)i;
        set_col(c, m, &cols[i], PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col));
    }
    return m;
}

/* ---------------------------------------------------------------- wire */

/*
 * rec__row_wire: a row straight to the record's protobuf wire bytes, for
 * pages of records in binary protobuf. Building each message (set_col) and
 * packing it through protobuf-c's descriptors was half of what a page of
 * members cost sentrad; this reads each column once and writes it. The
 * rules are protobuf-c's for the proto3 fields records have: fields in
 * number order, scalars and strings equal to their default left out, a
 * nested message written when set_col would have made it (one of its
 * columns not empty), each element of a repeated string.
 */

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

/* Field f's tag, then for wire type 2 the length n and the bytes s. */
static void w_bytes(sentra_wbuf_t *b, unsigned field, const char *s, size_t n)
{
    uint8_t *o = put_varint(b->p + b->len, (uint64_t)field << 3 | 2);
    o = put_varint(o, n);
    memcpy(o, s, n);
    b->len = (size_t)(o + n - b->p);
}

static void w_varint(sentra_wbuf_t *b, unsigned field, uint64_t v)
{
    uint8_t *o = put_varint(b->p + b->len, (uint64_t)field << 3);
    b->len = (size_t)(put_varint(o, v) - b->p);
}

/* Column col with text v of n bytes ("" for SQL NULL), as set_col reads it. */
static void w_col(sentra_wbuf_t *b, const rec_col_t *col, const char *v, size_t n)
{
    const ProtobufCFieldDescriptor *f = col->leaf;

    if (n == 0)
        return;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        /* comma-separated, empty elements skipped (strtok_r in set_col) */
        const char *end = v + n;
        while (v < end) {
            const char *sep = memchr(v, ',', (size_t)(end - v));
            const char *e = sep ? sep : end;
            if (e > v)
                w_bytes(b, f->id, v, (size_t)(e - v));
            v = e + 1;
        }
        return;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        w_bytes(b, f->id, v, n);
        return;
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_INT32: {
        int32_t x = (int32_t)sentra__dec_i64(v);
        if (is_kbli_version(f))
            x = sentra__kbli_enum(x);
        if (x != 0)
            w_varint(b, f->id, (uint64_t)(int64_t)x);      /* negative: 10 bytes */
        return;
    }
    case PROTOBUF_C_TYPE_INT64: {
        int64_t x = sentra__dec_i64(v);
        if (x != 0)
            w_varint(b, f->id, (uint64_t)x);
        return;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (v[0] == 't')
            w_varint(b, f->id, 1);
        return;
    default:
        return;                         /* no record field has another type */
    }
}

size_t rec__row_wire(sentra_wbuf_t *b, const rec_kind_t *k, const PGresult *res, int row,
                     int first_col)
{
    size_t n;
    const rec_col_t *cols = rec__cols(k, &n);
    const char *v[REC_MAX_COLS];
    size_t len[REC_MAX_COLS];
    size_t start = b->len, bound = 16;

    /* Each column's text once (libpq's accessors check their arguments on
     * every call, which showed in the profile): NULL reads as "", which
     * set_col treats as NULL. A bound of the record's size: each text and,
     * per column (and per element of a repeated one: at most one per byte),
     * a tag, a length and a varint of 10 bytes each at most. */
    for (size_t i = 0; i < n; i++) {
        v[i] = PQgetvalue(res, row, first_col + (int)i);
        len[i] = (size_t)PQgetlength(res, row, first_col + (int)i);
        bound += 3 * len[i] + 32;
    }
    sentra__wbuf_reserve(b, bound);

    for (size_t i = 0; i < n;) {
        if (cols[i].outer == NULL) {
            w_col(b, &cols[i], v[i], len[i]);
            i++;
            continue;
        }
        /* A nested message: its columns, which follow each other. Present
         * when one of them is not empty; its length goes before it, so
         * the body is written 10 bytes on and moved back. */
        const ProtobufCFieldDescriptor *outer = cols[i].outer;
        size_t j = i, present = 0;
        for (; j < n && cols[j].outer == outer; j++)
            present |= len[j];
        if (present) {
            uint8_t *o = put_varint(b->p + b->len, (uint64_t)outer->id << 3 | 2);
            size_t at = (size_t)(o - b->p), body = at + 10;
            b->len = body;
            for (size_t q = i; q < j; q++)
                w_col(b, &cols[q], v[q], len[q]);
            size_t blen = b->len - body;
            uint8_t *l = put_varint(b->p + at, blen);
            memmove(l, b->p + body, blen);
            b->len = (size_t)(l - b->p) + blen;
        }
        i = j;
    }
    return b->len - start;
}

ProtobufCMessage *rec__from_packed(call_t *c, const rec_kind_t *k, const char *packed)
{
    size_t n;
    const rec_col_t *cols = rec__cols(k, &n);
    char *p = call_strdup(c, packed);
    ProtobufCMessage *m = new_msg(c, k->desc);

    /* Fields end with U+001F, the last with the text. */
    for (size_t i = 0; i < n && p != NULL; i++) {
        char *sep = strchr(p, '\x1f');
        if (sep)
            *sep = '\0';
        set_col(c, m, &cols[i], p);
        p = sep ? sep + 1 : NULL;
    }
    return m;
}

static void set_named(call_t *c, ProtobufCMessage *m, const char *name, char *v)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (f == NULL)
        return;
    rec_col_t col = {.outer = NULL, .leaf = f, .top = f->id};
    set_col(c, m, &col, v);
}

ProtobufCMessage *rec__tombstone(call_t *c, const rec_kind_t *k, const char *key,
                                 int64_t version)
{
    ProtobufCMessage *m = new_msg(c, k->desc);
    set_named(c, m, k->key, call_strdup(c, key));
    set_named(c, m, "version", call_printf(c, "%lld", (long long)version));
    set_named(c, m, "deleted", "t");
    return m;
}

Sentra__V1__Record *rec__record(call_t *c, int kind, ProtobufCMessage *m)
{
    Sentra__V1__Record *r = call_alloc(c, sizeof *r);
    sentra__v1__record__init(r);
    switch (kind) {
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_SENTRA:
        r->record_case = SENTRA__V1__RECORD__RECORD_SENTRA;
        r->sentra = (Sentra__V1__Sentra *)m;
        break;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER:
        r->record_case = SENTRA__V1__RECORD__RECORD_MEMBER;
        r->member = (Sentra__V1__Member *)m;
        break;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_INSTITUTION:
        r->record_case = SENTRA__V1__RECORD__RECORD_INSTITUTION;
        r->institution = (Sentra__V1__Institution *)m;
        break;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE:
        r->record_case = SENTRA__V1__RECORD__RECORD_OBSTACLE;
        r->obstacle = (Sentra__V1__Obstacle *)m;
        break;
    case SENTRA__V1__RECORD_KIND__RECORD_KIND_ASSISTANCE:
        r->record_case = SENTRA__V1__RECORD__RECORD_ASSISTANCE;
        r->assistance = (Sentra__V1__Assistance *)m;
        break;
    }
    return r;
}

const char *rec__str(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return "";
    const char *s = *(char *const *)((const char *)m + f->offset);
    return s ? s : "";
}
