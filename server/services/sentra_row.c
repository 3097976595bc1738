/*
 * sentra_row.c: PostgreSQL rows of the view sentra_rows to Sentra messages,
 * and Sentra messages to the text parameters of the write functions.
 *
 * Rows are parsed in place: strings of the message point into the PGresult
 * (the handler serializes the reply inside its query callback, while the
 * result is alive), so a GetSentra costs a few allocations, not one per
 * field. PullChanges reads each record printed once, when it was written
 * (table sentra_pull), through sentra__from_pull.
 */
#include "sentra_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- reading */

/* The value of a column, or "" for NULL (protobuf-c's empty string). */
static char *col(const PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? (char *)"" : PQgetvalue(res, row, c);
}

static int64_t col_i64(const PGresult *res, int row, int c)
{
    return PQgetisnull(res, row, c) ? 0 : sentra__dec_i64(PQgetvalue(res, row, c));
}

int sentra__kbli_year(int v)
{
    switch (v) {
    case SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020: return 2020;
    case SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2025: return 2025;
    }
    return 0;
}

int sentra__kbli_enum(int year)
{
    switch (year) {
    case 2020: return SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020;
    case 2025: return SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2025;
    }
    return SENTRA__V1__KBLI_VERSION__KBLI_VERSION_UNSPECIFIED;
}

/* One allocation holds a sentra and its nested singletons. */
struct sentra_block {
    Sentra__V1__Sentra s;
    Sentra__V1__GeoPoint loc;
    Sentra__V1__Decree dec;
};

/* A sentra from the values of its columns 0 .. SENTRA_COL_DELETED (NULL
 * for SQL NULL); strings point into v's text. */
static Sentra__V1__Sentra *record_from(call_t *c, char *const *v)
{
#define STR(k) (v[k] != NULL ? v[k] : (char *)"")
#define I64(k) (v[k] != NULL ? sentra__dec_i64(v[k]) : 0)
    struct sentra_block *b = call_alloc(c, sizeof *b);
    Sentra__V1__Sentra *s = &b->s;
    sentra__v1__sentra__init(s);
    s->id = STR(SENTRA_COL_ID);
    s->regency_code = STR(SENTRA_COL_REGENCY);
    s->district_code = STR(SENTRA_COL_DISTRICT);
    s->village_code = STR(SENTRA_COL_VILLAGE);
    s->address = STR(SENTRA_COL_ADDRESS);
    if (v[SENTRA_COL_LAT] != NULL && v[SENTRA_COL_LON] != NULL) {
        sentra__v1__geo_point__init(&b->loc);
        b->loc.latitude = strtod(v[SENTRA_COL_LAT], NULL);
        b->loc.longitude = strtod(v[SENTRA_COL_LON], NULL);
        s->location = &b->loc;
    }
    s->name = STR(SENTRA_COL_NAME);
    s->commodity = STR(SENTRA_COL_COMMODITY);
    s->main_product = STR(SENTRA_COL_MAIN_PRODUCT);
    s->kbli_code = STR(SENTRA_COL_KBLI_CODE);
    s->kbli_version = sentra__kbli_enum((int)I64(SENTRA_COL_KBLI_VERSION));
    s->sector_group = (int)I64(SENTRA_COL_SECTOR_GROUP);
    s->status = (int)I64(SENTRA_COL_STATUS);
    s->formed_on = STR(SENTRA_COL_FORMED_ON);
    if (v[SENTRA_COL_DECREE_NUMBER] != NULL || v[SENTRA_COL_DECREE_DATE] != NULL ||
        v[SENTRA_COL_DECREE_OFFICIAL] != NULL) {
        sentra__v1__decree__init(&b->dec);
        b->dec.number = STR(SENTRA_COL_DECREE_NUMBER);
        b->dec.date = STR(SENTRA_COL_DECREE_DATE);
        b->dec.official = STR(SENTRA_COL_DECREE_OFFICIAL);
        s->decree = &b->dec;
    }
    s->contact_name = STR(SENTRA_COL_CONTACT_NAME);
    s->contact_phone = STR(SENTRA_COL_CONTACT_PHONE);
    s->version = I64(SENTRA_COL_VERSION);
    s->created_at_ms = I64(SENTRA_COL_CREATED_MS);
    s->updated_at_ms = I64(SENTRA_COL_UPDATED_MS);
    s->created_by = STR(SENTRA_COL_CREATED_BY);
    s->updated_by = STR(SENTRA_COL_UPDATED_BY);
    s->province_code = STR(SENTRA_COL_PROVINCE);
    s->deleted = STR(SENTRA_COL_DELETED)[0] == 't';
    return s;
#undef STR
#undef I64
}

/* The record's own columns (0 .. SENTRA_COL_DELETED) of one row. */
static Sentra__V1__Sentra *record_of(call_t *c, const PGresult *res, int row)
{
    char *v[SENTRA_COL_DELETED + 1];
    for (int k = 0; k <= SENTRA_COL_DELETED; k++)
        v[k] = PQgetisnull(res, row, k) ? NULL : PQgetvalue(res, row, k);
    return record_from(c, v);
}

/* Splits "MY,SG" (two-letter codes: a CHECK constraint) in place. */
static void split_destinations(call_t *c, Sentra__V1__Figures *g, char *d)
{
    size_t nd = 1;
    char *save = NULL;

    if (d[0] == '\0')
        return;
    for (const char *p = d; *p; p++)
        nd += *p == ',';
    g->export_destinations = call_alloc(c, nd * sizeof(char *));
    for (char *tok = strtok_r(d, ",", &save); tok && g->n_export_destinations < nd;
         tok = strtok_r(NULL, ",", &save))
        g->export_destinations[g->n_export_destinations++] = tok;
}

Sentra__V1__Sentra *sentra__from_rows(call_t *c, const PGresult *res, int *rowp)
{
    int row = *rowp, n = PQntuples(res), end;

    if (row < 0 || row >= n || PQnfields(res) < SENTRA_NCOLS)
        return NULL;
    const char *id = PQgetvalue(res, row, SENTRA_COL_ID);
    for (end = row + 1; end < n; end++)
        if (strcmp(PQgetvalue(res, end, SENTRA_COL_ID), id) != 0)
            break;
    *rowp = end;

    Sentra__V1__Sentra *s = record_of(c, res, row);

    /* Figures: one per row, unless the single row has none (LEFT JOIN). */
    size_t nf = 0;
    for (int r = row; r < end; r++)
        if (!PQgetisnull(res, r, SENTRA_COL_FIG_YEAR))
            nf++;
    if (nf == 0)
        return s;
    Sentra__V1__Figures *f = call_alloc(c, nf * sizeof *f);
    s->figures = call_alloc(c, nf * sizeof *s->figures);
    s->n_figures = nf;
    size_t i = 0;
    for (int r = row; r < end; r++) {
        if (PQgetisnull(res, r, SENTRA_COL_FIG_YEAR))
            continue;
        Sentra__V1__Figures *g = &f[i];
        sentra__v1__figures__init(g);
        g->year = (int32_t)col_i64(res, r, SENTRA_COL_FIG_YEAR);
        g->business_units = col_i64(res, r, SENTRA_COL_BUSINESS_UNITS);
        g->workers_male = col_i64(res, r, SENTRA_COL_WORKERS_MALE);
        g->workers_female = col_i64(res, r, SENTRA_COL_WORKERS_FEMALE);
        g->investment = col_i64(res, r, SENTRA_COL_INVESTMENT);
        g->production_value = col_i64(res, r, SENTRA_COL_PRODUCTION_VALUE);
        g->material_value = col_i64(res, r, SENTRA_COL_MATERIAL_VALUE);
        g->capacity = col_i64(res, r, SENTRA_COL_CAPACITY);
        g->capacity_unit = col(res, r, SENTRA_COL_CAPACITY_UNIT);
        g->export_share_bp = (int32_t)col_i64(res, r, SENTRA_COL_EXPORT_SHARE_BP);
        const char *d = col(res, r, SENTRA_COL_EXPORT_DESTINATIONS);
        if (d[0])
            split_destinations(c, g, call_strdup(c, d));
        s->figures[i++] = g;
    }
    return s;
}

/* The fields of one packed figures entry, in the order of sentra_pull_src
 * (migrations/0007_pull_rows.sql). */
enum { PF_YEAR, PF_UNITS, PF_MALE, PF_FEMALE, PF_INVESTMENT, PF_PRODUCTION,
       PF_MATERIAL, PF_CAPACITY, PF_EXPORT_SHARE, PF_DESTINATIONS, PF_UNIT, PF_N };

/* The figures of s from their packed text (cut in place; the strings of
 * the figures point into it). */
static void figures_from_packed(call_t *c, Sentra__V1__Sentra *s, char *text)
{
    size_t nf = 1;

    if (text[0] == '\0')
        return;
    for (const char *p = text; *p; p++)
        nf += *p == '\x1e';
    Sentra__V1__Figures *f = call_alloc(c, nf * sizeof *f);
    s->figures = call_alloc(c, nf * sizeof *s->figures);
    for (char *entry = text; entry != NULL && s->n_figures < nf;) {
        char *next = strchr(entry, '\x1e');
        if (next)
            *next++ = '\0';
        /* The fields; the last (capacity_unit) is the rest of the entry. */
        char *fld[PF_N];
        int k = 0;
        fld[k++] = entry;
        for (char *p = entry; k < PF_N && (p = strchr(p, '\x1f')) != NULL; ) {
            *p++ = '\0';
            fld[k++] = p;
        }
        for (; k < PF_N; k++)
            fld[k] = (char *)"";    /* cannot happen: concat_ws of NOT NULL columns */
        Sentra__V1__Figures *g = &f[s->n_figures];
        sentra__v1__figures__init(g);
        g->year = (int32_t)sentra__dec_i64(fld[PF_YEAR]);
        g->business_units = sentra__dec_i64(fld[PF_UNITS]);
        g->workers_male = sentra__dec_i64(fld[PF_MALE]);
        g->workers_female = sentra__dec_i64(fld[PF_FEMALE]);
        g->investment = sentra__dec_i64(fld[PF_INVESTMENT]);
        g->production_value = sentra__dec_i64(fld[PF_PRODUCTION]);
        g->material_value = sentra__dec_i64(fld[PF_MATERIAL]);
        g->capacity = sentra__dec_i64(fld[PF_CAPACITY]);
        g->export_share_bp = (int32_t)sentra__dec_i64(fld[PF_EXPORT_SHARE]);
        g->capacity_unit = fld[PF_UNIT];
        split_destinations(c, g, fld[PF_DESTINATIONS]);
        s->figures[s->n_figures++] = g;
        entry = next;
    }
}

Sentra__V1__Sentra *sentra__from_pull(call_t *c, const PGresult *res, int row)
{
    char *v[SENTRA_COL_DELETED + 1] = {0};

    if (row < 0 || row >= PQntuples(res) || PQnfields(res) < SENTRA_PULL_NCOLS)
        return NULL;
    v[SENTRA_COL_ID] = PQgetvalue(res, row, SENTRA_PULL_ID);
    v[SENTRA_COL_VERSION] = PQgetvalue(res, row, SENTRA_PULL_VERSION);
    v[SENTRA_COL_DELETED] = PQgetvalue(res, row, SENTRA_PULL_DELETED);
    if (PQgetisnull(res, row, SENTRA_PULL_PACKED))
        return record_from(c, v);           /* a tombstone: id and version */

    /* One copy, cut in place: the strings of the message point into it.
     * Fields REGENCY .. PROVINCE end with \x1f, the last with \x1d; ''
     * stands for NULL (no column that can be NULL can be ''). */
    char *p = call_strdup(c, PQgetvalue(res, row, SENTRA_PULL_PACKED)), *figs = NULL;
    for (int k = SENTRA_COL_REGENCY; k <= SENTRA_COL_PROVINCE; k++) {
        size_t n = strcspn(p, "\x1f\x1d");
        char sep = p[n];
        p[n] = '\0';
        if (k != SENTRA_COL_VERSION)
            v[k] = n > 0 ? p : NULL;
        if (sep == '\0')
            break;                          /* short: the rest stays NULL */
        p += n + 1;
        if (sep == '\x1d') {
            figs = p;
            break;
        }
    }
    Sentra__V1__Sentra *s = record_from(c, v);
    if (figs != NULL)
        figures_from_packed(c, s, figs);
    return s;
}

/* ---------------------------------------------------------------- writing */

int sentra__json_string(char *buf, size_t cap, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
#define PUT(ch) do { if (len + 1 >= cap) return -1; buf[len++] = (ch); } while (0)
    PUT('"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            PUT('\\');
            PUT((char)*p);
        } else if (*p < 0x20) {
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[*p >> 4]);
            PUT(hex[*p & 15]);
        } else {
            PUT((char)*p);
        }
    }
    PUT('"');
    buf[len] = '\0';
    return (int)len;
#undef PUT
}

static size_t json_put(char *buf, size_t cap, size_t len, const char *s)
{
    int n = sentra__json_string(buf, cap, len, s);
    if (n < 0)
        abort();                /* cannot happen: cap bounds the output */
    return (size_t)n;
}

/* The figures as a JSON array of objects with proto field names. */
static char *figures_json(call_t *c, const Sentra__V1__Sentra *s)
{
    /* Bound the size first: numbers are at most 20 characters, strings at
     * most 6 bytes per input byte once escaped. */
    size_t cap = 3;
    for (size_t i = 0; i < s->n_figures; i++) {
        const Sentra__V1__Figures *g = s->figures[i];
        cap += 400 + 6 * strlen(g->capacity_unit ? g->capacity_unit : "") +
               8 * g->n_export_destinations;
        for (size_t j = 0; j < g->n_export_destinations; j++)
            cap += 6 * strlen(g->export_destinations[j] ? g->export_destinations[j] : "");
    }
    char *buf = call_alloc(c, cap);
    size_t len = 0;
    int n;

    buf[len++] = '[';
    for (size_t i = 0; i < s->n_figures; i++) {
        const Sentra__V1__Figures *g = s->figures[i];
        n = snprintf(buf + len, cap - len,
                     "%s{\"year\":%d,\"business_units\":%lld,\"workers_male\":%lld,"
                     "\"workers_female\":%lld,\"investment\":%lld,"
                     "\"production_value\":%lld,\"material_value\":%lld,"
                     "\"capacity\":%lld,\"export_share_bp\":%d,\"capacity_unit\":",
                     i ? "," : "", g->year, (long long)g->business_units,
                     (long long)g->workers_male, (long long)g->workers_female,
                     (long long)g->investment, (long long)g->production_value,
                     (long long)g->material_value, (long long)g->capacity,
                     g->export_share_bp);
        if (n < 0 || (size_t)n >= cap - len)
            abort();            /* cannot happen: cap bounds the output */
        len += (size_t)n;
        len = json_put(buf, cap, len, g->capacity_unit);
        memcpy(buf + len, ",\"export_destinations\":[", 24);
        len += 24;
        for (size_t j = 0; j < g->n_export_destinations; j++) {
            if (j)
                buf[len++] = ',';
            len = json_put(buf, cap, len, g->export_destinations[j]);
        }
        buf[len++] = ']';
        buf[len++] = '}';
    }
    buf[len++] = ']';
    buf[len] = '\0';
    return buf;
}

static const char *opt(const char *s)
{
    return s && s[0] ? s : NULL;
}

void sentra__params(call_t *c, const Sentra__V1__Sentra *s, const char **v)
{
    const Sentra__V1__Decree *d = s->decree;

    v[SENTRA_PARAM_REGENCY] = opt(s->regency_code);
    v[SENTRA_PARAM_DISTRICT] = opt(s->district_code);
    v[SENTRA_PARAM_VILLAGE] = opt(s->village_code);
    v[SENTRA_PARAM_ADDRESS] = s->address ? s->address : "";
    if (s->location) {
        v[SENTRA_PARAM_LAT] = call_printf(c, "%.17g", s->location->latitude);
        v[SENTRA_PARAM_LON] = call_printf(c, "%.17g", s->location->longitude);
    } else {
        v[SENTRA_PARAM_LAT] = v[SENTRA_PARAM_LON] = NULL;
    }
    v[SENTRA_PARAM_NAME] = s->name ? s->name : "";
    v[SENTRA_PARAM_COMMODITY] = s->commodity ? s->commodity : "";
    v[SENTRA_PARAM_MAIN_PRODUCT] = s->main_product ? s->main_product : "";
    v[SENTRA_PARAM_KBLI_CODE] = opt(s->kbli_code);
    v[SENTRA_PARAM_KBLI_VERSION] = s->kbli_version
        ? call_printf(c, "%d", sentra__kbli_year(s->kbli_version)) : NULL;
    v[SENTRA_PARAM_SECTOR_GROUP] = s->sector_group ? call_printf(c, "%d", s->sector_group) : NULL;
    v[SENTRA_PARAM_STATUS] = s->status ? call_printf(c, "%d", s->status) : NULL;
    v[SENTRA_PARAM_FORMED_ON] = opt(s->formed_on);
    v[SENTRA_PARAM_DECREE_NUMBER] = d ? opt(d->number) : NULL;
    v[SENTRA_PARAM_DECREE_DATE] = d ? opt(d->date) : NULL;
    v[SENTRA_PARAM_DECREE_OFFICIAL] = d ? opt(d->official) : NULL;
    v[SENTRA_PARAM_CONTACT_NAME] = s->contact_name ? s->contact_name : "";
    v[SENTRA_PARAM_CONTACT_PHONE] = s->contact_phone ? s->contact_phone : "";
    v[SENTRA_PARAM_FIGURES] = figures_json(c, s);
}

/* ---------------------------------------------------------------- wire */

/*
 * sentra__pull_wire: the packed text of sentra_pull straight to protobuf
 * wire bytes, for StreamChanges. Building the message (sentra__from_pull)
 * and packing it through protobuf-c's descriptors cost more than
 * PostgreSQL took to read the rows; this writes each field once. The
 * rules are protobuf-c's for proto3: scalars and strings equal to their
 * default are left out, present sub-messages are written even when
 * empty, repeated elements always.
 */

void sentra__wbuf_reserve(sentra_wbuf_t *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        abort();
    b->p = p;
    b->cap = cap;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

/* A field's tag: number and wire type (0 varint, 1 64-bit, 2 bytes). */
static uint8_t *put_tag(uint8_t *o, unsigned field, unsigned wt)
{
    return put_varint(o, (uint64_t)field << 3 | wt);
}

/* Writes into b, which has room (the caller reserved the record's bound). */
static inline void w_varint(sentra_wbuf_t *b, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    uint8_t *o = put_tag(b->p + b->len, field, 0);
    b->len = (size_t)(put_varint(o, v) - b->p);
}

/* A string of n bytes (not left out when always is set: repeated). */
static inline void w_bytes(sentra_wbuf_t *b, unsigned field, const char *s, size_t n, int always)
{
    if (n == 0 && !always)
        return;
    uint8_t *o = put_tag(b->p + b->len, field, 2);
    o = put_varint(o, n);
    memcpy(o, s, n);
    b->len = (size_t)(o + n - b->p);
}

static void w_double(sentra_wbuf_t *b, unsigned field, double d)
{
    uint64_t u;
    if (d == 0)
        return;
    memcpy(&u, &d, sizeof u);
    uint8_t *o = put_tag(b->p + b->len, field, 1);
    for (int i = 0; i < 8; i++)
        *o++ = (uint8_t)(u >> (8 * i));
    b->len = (size_t)(o - b->p);
}

/* Starts a length-delimited sub-message: its tag, and room for a length
 * of up to 4 bytes (fixed by msg_end). Returns where the body starts. */
static size_t msg_begin(sentra_wbuf_t *b, unsigned field)
{
    uint8_t *o = put_tag(b->p + b->len, field, 2);
    b->len = (size_t)(o - b->p) + 4;
    return b->len;
}

static void msg_end(sentra_wbuf_t *b, size_t body)
{
    size_t n = b->len - body, k = varint_len(n);
    uint8_t *len_at = b->p + body - 4;
    if (k < 4)
        memmove(len_at + k, b->p + body, n);
    put_varint(len_at, n);
    b->len -= 4 - k;
}

/* The decimal text [s, s+n) as int64 (sentra__dec_i64 on a bounded span). */
static inline uint64_t span_i64(const char *s, size_t n)
{
    uint64_t v = 0;
    const char *e = s + n;
    int neg = s < e && *s == '-';

    for (s += neg; s < e && (unsigned)(*s - '0') < 10; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    return neg ? 0 - v : v;
}

/* The first separator (\x1f, or `other`: \x1d in the record's part,
 * \x1e in the figures) in [p, end), or end. Eight bytes at a time: the
 * lowest byte below 0x20 of a word is found exactly (a borrow starts only
 * at such a byte) and checked; a tab or line break (an address may hold
 * them) is passed over. This scan was half of the encoding's time. */
static inline const char *next_sep(const char *p, const char *end, char other)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t m = (x - 0x2020202020202020ull) & ~x & 0x8080808080808080ull;
        if (m == 0) {
            p += 8;
            continue;
        }
        const char *q = p + (__builtin_ctzll(m) >> 3);
        if (*q == '\x1f' || *q == other)
            return q;
        p = q + 1;
    }
#endif
    for (; p < end; p++)
        if (*p == '\x1f' || *p == other)
            return p;
    return end;
}

/* The decimal number at *pp (an optional '-', digits), as span_i64 reads
 * a field: *pp moves past the digits (to the separator, in a field that
 * holds a number and nothing else). One pass, where finding the field's
 * end first and parsing it after read its digits twice. */
static inline uint64_t scan_i64(const char **pp, const char *end)
{
    const char *p = *pp;
    uint64_t v = 0;
    int neg = p < end && *p == '-';

    p += neg;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Eight digits at once (money and timestamps have 9 to 13): all eight
     * bytes are digits when each is 0x30..0x39 (high nibble 3, and adding
     * 6 does not carry out of the low one); then three multiply-and-add
     * steps pair them up (the first digit is the lowest byte). */
    if (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        if (((x & 0xf0f0f0f0f0f0f0f0ull) | (((x + 0x0606060606060606ull) & 0xf0f0f0f0f0f0f0f0ull) >> 4)) ==
            0x3333333333333333ull) {
            x -= 0x3030303030303030ull;
            x = (x * 10 + (x >> 8)) & 0x00ff00ff00ff00ffull;
            x = (x * 100 + (x >> 16)) & 0x0000ffff0000ffffull;
            v = (x * 10000 + (x >> 32)) & 0xffffffffull;
            p += 8;
        }
    }
#endif
    /* No bound check per digit: the text ends with a NUL (its caller's
     * contract), which is not a digit. */
    for (; (unsigned)(*p - '0') < 10; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    *pp = p;
    return neg ? 0 - v : v;
}

/* The figures entry at p (fields separated by \x1f, in PF_* order, up to
 * the \x1e before the next entry or end). Returns where the next entry
 * starts (end itself after a last \x1e: an empty entry, as from_pull
 * reads it), or NULL after the last. */
static const char *w_figures(sentra_wbuf_t *b, const char *p, const char *end)
{
    uint64_t num[PF_DESTINATIONS] = {0};
    const char *dest = "", *unit = "";
    size_t destl = 0, unitl = 0;
    const char *next = NULL;
    int k = 0, open = 1;        /* open: the entry has more fields */

    /* The numbers, each up to its separator. */
    for (; k < PF_DESTINATIONS && open; k++) {
        num[k] = scan_i64(&p, end);
        const char *sep = next_sep(p, end, '\x1e');
        if (sep == end) {
            open = 0;
        } else {
            p = sep + 1;
            if (*sep == '\x1e') {
                next = p;
                open = 0;
            }
        }
    }
    if (open) {
        const char *sep = next_sep(p, end, '\x1e');
        dest = p;
        destl = (size_t)(sep - p);
        if (sep == end) {
            open = 0;
        } else {
            p = sep + 1;
            if (*sep == '\x1e') {
                next = p;
                open = 0;
            }
        }
    }
    if (open) {
        /* The last field is the rest of the entry. */
        const char *stop = p;
        while (stop < end && *stop != '\x1e')
            stop++;
        unit = p;
        unitl = (size_t)(stop - p);
        if (stop < end)
            next = stop + 1;
    }
    size_t body = msg_begin(b, 16);
    /* int32 fields are sign-extended to 64 bits, as protobuf-c packs them. */
    w_varint(b, 1, (uint64_t)(int64_t)(int32_t)num[PF_YEAR]);
    w_varint(b, 2, num[PF_UNITS]);
    w_varint(b, 3, num[PF_MALE]);
    w_varint(b, 4, num[PF_FEMALE]);
    w_varint(b, 5, num[PF_INVESTMENT]);
    w_varint(b, 6, num[PF_PRODUCTION]);
    w_varint(b, 7, num[PF_MATERIAL]);
    w_varint(b, 8, num[PF_CAPACITY]);
    w_bytes(b, 9, unit, unitl, 0);
    w_varint(b, 10, (uint64_t)(int64_t)(int32_t)num[PF_EXPORT_SHARE]);
    /* Destinations: "MY,SG", empty entries skipped (as strtok does). */
    const char *d = dest, *dend = d + destl;
    while (d < dend) {
        const char *stop = d;
        while (stop < dend && *stop != ',')
            stop++;
        if (stop > d)
            w_bytes(b, 11, d, (size_t)(stop - d), 1);
        d = stop + 1;
    }
    msg_end(b, body);
    return next;
}

size_t sentra__pull_wire(sentra_wbuf_t *b, const char *id, const char *version,
                         const char *deleted, const char *packed, size_t plen)
{
    size_t start = b->len, idlen = strlen(id);
    /* A bound of the record's size: its text, and for each field (at most
     * one per separator, and 40 more) a tag, a length prefix and a varint:
     * at most 17 bytes. A capacity check only: buffers are reused. */
    sentra__wbuf_reserve(b, idlen + 64 + 18 * (plen + 40));

    w_bytes(b, 1, id, idlen, 0);
    if (packed != NULL) {
        const char *v[SENTRA_COL_PROVINCE + 1];
        size_t vl[SENTRA_COL_PROVINCE + 1];
        const char *p = packed, *end = packed + plen, *figs = NULL;
        int k;
        for (k = SENTRA_COL_REGENCY; k <= SENTRA_COL_PROVINCE; k++) {
            const char *sep = next_sep(p, end, '\x1d');
            v[k] = p;
            vl[k] = (size_t)(sep - p);
            if (sep == end) {
                k++;
                break;                      /* short: the rest stays empty */
            }
            p = sep + 1;
            if (*sep == '\x1d') {
                figs = p;
                k++;
                break;
            }
        }
        for (; k <= SENTRA_COL_PROVINCE; k++) {
            v[k] = "";
            vl[k] = 0;
        }
#define S(f, col) w_bytes(b, f, v[col], vl[col], 0)
        S(2, SENTRA_COL_REGENCY);
        S(3, SENTRA_COL_DISTRICT);
        S(4, SENTRA_COL_VILLAGE);
        S(5, SENTRA_COL_ADDRESS);
        if (vl[SENTRA_COL_LAT] > 0 && vl[SENTRA_COL_LON] > 0) {
            /* strtod needs a terminated string: the value ends at \x1f
             * (a float8 prints in at most 24 characters; a longer text,
             * which cannot come from the table, still parses whole). */
            char num[64];
            size_t body = msg_begin(b, 6);
            for (int j = 0; j < 2; j++) {
                int col = j ? SENTRA_COL_LON : SENTRA_COL_LAT;
                char *t = vl[col] < sizeof num ? num : malloc(vl[col] + 1);
                if (t == NULL)
                    abort();
                memcpy(t, v[col], vl[col]);
                t[vl[col]] = '\0';
                w_double(b, (unsigned)j + 1, strtod(t, NULL));
                if (t != num)
                    free(t);
            }
            msg_end(b, body);
        }
        S(7, SENTRA_COL_NAME);
        S(8, SENTRA_COL_COMMODITY);
        S(9, SENTRA_COL_MAIN_PRODUCT);
        S(10, SENTRA_COL_KBLI_CODE);
        w_varint(b, 11, (uint64_t)(int64_t)sentra__kbli_enum((int)span_i64(v[SENTRA_COL_KBLI_VERSION],
                                                                          vl[SENTRA_COL_KBLI_VERSION])));
        w_varint(b, 12, (uint64_t)(int64_t)(int)span_i64(v[SENTRA_COL_SECTOR_GROUP], vl[SENTRA_COL_SECTOR_GROUP]));
        w_varint(b, 13, (uint64_t)(int64_t)(int)span_i64(v[SENTRA_COL_STATUS], vl[SENTRA_COL_STATUS]));
        S(14, SENTRA_COL_FORMED_ON);
        if (vl[SENTRA_COL_DECREE_NUMBER] || vl[SENTRA_COL_DECREE_DATE] || vl[SENTRA_COL_DECREE_OFFICIAL]) {
            size_t body = msg_begin(b, 15);
            S(1, SENTRA_COL_DECREE_NUMBER);
            S(2, SENTRA_COL_DECREE_DATE);
            S(3, SENTRA_COL_DECREE_OFFICIAL);
            msg_end(b, body);
        }
        if (figs != NULL && figs < end)
            for (const char *e = figs; e != NULL;)
                e = w_figures(b, e, end);
        S(17, SENTRA_COL_CONTACT_NAME);
        S(18, SENTRA_COL_CONTACT_PHONE);
        w_varint(b, 19, (uint64_t)sentra__dec_i64(version));
        w_varint(b, 20, span_i64(v[SENTRA_COL_CREATED_MS], vl[SENTRA_COL_CREATED_MS]));
        w_varint(b, 21, span_i64(v[SENTRA_COL_UPDATED_MS], vl[SENTRA_COL_UPDATED_MS]));
        S(22, SENTRA_COL_CREATED_BY);
        S(23, SENTRA_COL_UPDATED_BY);
        S(24, SENTRA_COL_PROVINCE);
#undef S
    } else {
        w_varint(b, 19, (uint64_t)sentra__dec_i64(version));
    }
    w_varint(b, 25, deleted != NULL && deleted[0] == 't');
    return b->len - start;
}
