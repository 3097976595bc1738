/*
 * validate_records.c: the rules of members, institutions, obstacles and
 * assistance, in pure C (see validate_records.h).
 *
 * The database holds the same rules (migrations/0013_records.sql) and
 * docs/DATA_MODEL.md lists them: keep the three in step.
 */
#include "validate_records.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- reporting */

static void report(validate_ctx_t *vc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(validate_ctx_t *vc, const char *field, const char *fmt, ...)
{
    char reason[256];
    va_list ap;

    vc->count++;
    if (!vc->report)
        return;
    if (vc->max > 0 && vc->count > vc->max) {
        vc->report(vc->arg, NULL, NULL);   /* one more, not listed */
        return;
    }
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    vc->report(vc->arg, field, reason);
}

static int quiet(const validate_ctx_t *vc)
{
    return !vc->report || (vc->max > 0 && vc->count >= vc->max);
}

static int nonempty(const char *s)
{
    return s && s[0];
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- pieces */

static void check_id(validate_ctx_t *vc, const char *field, const char *id, int required)
{
    if (!nonempty(id)) {
        if (required)
            report(vc, field, "is required");
    } else if (!validate_uuid(id)) {
        report(vc, field, "must be a UUID");
    }
}

static void check_count(validate_ctx_t *vc, const char *field, int64_t v, int64_t max)
{
    if (v < 0)
        report(vc, field, "must not be negative");
    else if (v > max)
        report(vc, field, "is larger than %lld", (long long)max);
}

/* An enumeration with values 1..max; required unless optional. */
static void check_enum(validate_ctx_t *vc, const char *field, int v, int max, int required)
{
    if (v == 0) {
        if (required)
            report(vc, field, "is required");
    } else if (v < 1 || v > max) {
        report(vc, field, "is not a known value");
    }
}

/* A year: 0 when optional and absent, else 1945..this year. */
static void check_year(validate_ctx_t *vc, const char *field, int y, int required)
{
    int this_year = vc->today / 10000;
    if (y == 0) {
        if (required)
            report(vc, field, "is required");
    } else if (y < 1945) {
        report(vc, field, "must be a year from 1945 to %d", this_year);
    } else if (y > this_year) {
        report(vc, field, "is in the future");
    }
}

/* A date YYYY-MM-DD from 1945, not in the future; *ymd gets it (0 absent,
 * -1 bad). */
static void check_date(validate_ctx_t *vc, const char *field, const char *s, int required,
                       int *ymd)
{
    *ymd = 0;
    if (!nonempty(s)) {
        if (required)
            report(vc, field, "is required");
        return;
    }
    if (!validate_date(s, ymd)) {
        report(vc, field, "must be a real date YYYY-MM-DD");
        *ymd = -1;
    } else if (*ymd < 19450101) {
        report(vc, field, "is before 1945");
        *ymd = -1;
    } else if (*ymd > vc->today) {
        report(vc, field, "is in the future");
        *ymd = -1;
    }
}

/* ---------------------------------------------------------------- masks */

static const char *const output_only[] = {
    "size_class", "version", "created_at_ms", "updated_at_ms", "created_by",
    "updated_by", "regency_code", "province_code", "deleted",
};

int validate_record_output_only(const char *name)
{
    for (size_t i = 0; i < sizeof output_only / sizeof *output_only; i++)
        if (strcmp(name, output_only[i]) == 0)
            return 1;
    return 0;
}

uint64_t validate_record_field_bit(const ProtobufCMessageDescriptor *d, const char *path)
{
    if (strcmp(path, "*") == 0)
        return REC_ALL;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, path);
    return f && f->id < 64 ? REC_FIELD(f->id) : 0;
}

uint64_t validate_record_mask(validate_ctx_t *vc, const ProtobufCMessageDescriptor *d,
                              const char *const *paths, size_t n)
{
    uint64_t bits = 0;
    int bad = 0;
    char field[48];

    if (n == 0)
        return REC_ALL;
    if (n > VALIDATE_MAX_MASK_PATHS) {
        report(vc, "update_mask", "has more than %d paths", VALIDATE_MAX_MASK_PATHS);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i] ? paths[i] : "";
        uint64_t b = validate_record_field_bit(d, p);

        snprintf(field, sizeof field, "update_mask[%zu]", i);
        if (b != 0 && b != REC_ALL && validate_record_output_only(p)) {
            report(vc, field, "%s is output only and cannot be updated", p);
            bad = 1;
        } else if (strcmp(p, "id") == 0 || strcmp(p, "sentra_id") == 0) {
            report(vc, field, "%s is fixed when the record is created", p);
            bad = 1;
        } else if (b == 0) {
            if (sentra__printable_ascii(p) && strlen(p) <= 64)
                report(vc, field, "\"%s\" is not a field of %s", p, d->short_name);
            else
                report(vc, field, "is not a field of %s", d->short_name);  /* not echoed */
            bad = 1;
        }
        bits |= b;
    }
    return bad ? 0 : bits;
}

#define HAS(fields, n) (((fields) & REC_FIELD(n)) != 0)

/* ---------------------------------------------------------------- members */

int validate_member(validate_ctx_t *vc, const Sentra__V1__Member *m, uint64_t fields,
                    unsigned how)
{
    int before = vc->count;
    int code_set = nonempty(m->kbli_code);

    /* id: a create may leave it to the server */
    check_id(vc, "id", m->id, how & VR_ID);
    if (how & VR_SENTRA)
        check_id(vc, "sentra_id", m->sentra_id, 1);
    if (HAS(fields, 3))
        validate_text(vc, "name", m->name, 3, 200, TEXT_SINGLE_LINE | TEXT_REQUIRED);
    if (HAS(fields, 4))
        validate_text(vc, "owner_name", m->owner_name, 1, 200, TEXT_SINGLE_LINE | TEXT_REQUIRED);
    if (HAS(fields, 5))
        check_enum(vc, "owner_sex", m->owner_sex, 2, 1);
    if (HAS(fields, 6) && nonempty(m->nib) &&
        (strlen(m->nib) != 13 || !all_digits(m->nib, 13)))
        report(vc, "nib", "must be 13 digits (a Nomor Induk Berusaha), or empty");
    if (HAS(fields, 7) && code_set) {
        const char *k = m->kbli_code;
        if (strlen(k) != 5 || !all_digits(k, 5))
            report(vc, "kbli_code", "must be 5 digits");
        else if (strncmp(k, "10", 2) < 0 || strncmp(k, "33", 2) > 0)
            report(vc, "kbli_code", "must be a manufacturing code (main group 10 to 33)");
    }
    if (HAS(fields, 8)) {
        int v = m->kbli_version;
        if (v != 0 && v != SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020 &&
            v != SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2025)
            report(vc, "kbli_version", "is not a known KBLI edition");
        else if (HAS(fields, 7) && code_set && v == 0)
            report(vc, "kbli_version", "is required with a KBLI code");
        else if (HAS(fields, 7) && !code_set && v != 0)
            report(vc, "kbli_version", "must be empty without a KBLI code");
    }
    if (HAS(fields, 9))
        validate_text(vc, "products", m->products, 0, 500, TEXT_SINGLE_LINE);
    if (HAS(fields, 10))
        check_count(vc, "workers_male", m->workers_male, INT32_MAX);
    if (HAS(fields, 11))
        check_count(vc, "workers_female", m->workers_female, INT32_MAX);
    if (HAS(fields, 12))
        check_count(vc, "investment", m->investment, VALIDATE_MONEY_MAX);
    if (HAS(fields, 13))
        check_count(vc, "production_value", m->production_value, VALIDATE_MONEY_MAX);
    if (HAS(fields, 14))
        check_year(vc, "joined_year", m->joined_year, 0);
    if (HAS(fields, 15)) {
        check_year(vc, "left_year", m->left_year, 0);
        if (HAS(fields, 14) && m->left_year != 0 && m->joined_year != 0 &&
            m->left_year >= 1945 && m->left_year < m->joined_year)
            report(vc, "left_year", "is before joined_year");
    }
    return vc->count - before;
}

/* ---------------------------------------------------------------- institution */

int validate_institution(validate_ctx_t *vc, const Sentra__V1__Institution *in)
{
    int before = vc->count;
    int none = in->form == SENTRA__V1__INSTITUTION_FORM__INSTITUTION_FORM_NONE;
    const Sentra__V1__Board *b = in->board;
    const Sentra__V1__Facility *f = in->facility;
    const char *chair = b && b->chair ? b->chair : "";
    const char *fname = f && f->name ? f->name : "";
    const char *provides = f && f->provides ? f->provides : "";
    int condition = f ? f->condition : 0;

    check_id(vc, "sentra_id", in->sentra_id, 1);
    check_enum(vc, "form", in->form, 5, 1);
    validate_text(vc, "legal_basis", in->legal_basis, 0, 200, TEXT_SINGLE_LINE);
    validate_text(vc, "registration_number", in->registration_number, 0, 100, TEXT_SINGLE_LINE);
    if (none && nonempty(in->legal_basis))
        report(vc, "legal_basis", "must be empty when the form is none");
    if (none && nonempty(in->registration_number))
        report(vc, "registration_number", "must be empty when the form is none");
    if (validate_text(vc, "board.chair", chair, 0, 200, TEXT_SINGLE_LINE) && !none &&
        in->form != 0) {
        size_t a = 0, n = strlen(chair);
        while (a < n && chair[a] == ' ')
            a++;
        if (a == n)
            report(vc, "board.chair", "is required unless the form is none");
    }
    validate_text(vc, "board.secretary", b ? b->secretary : "", 0, 200, TEXT_SINGLE_LINE);
    validate_text(vc, "board.treasurer", b ? b->treasurer : "", 0, 200, TEXT_SINGLE_LINE);
    int named = validate_text(vc, "facility.name", fname, 0, 200, TEXT_SINGLE_LINE);
    validate_text(vc, "facility.provides", provides, 0, 200, TEXT_SINGLE_LINE);
    size_t a = 0, n = strlen(fname);
    while (a < n && fname[a] == ' ')
        a++;
    int has_facility = a < n;
    if (has_facility) {
        check_enum(vc, "facility.condition", condition, 4, 1);
    } else if (named) {
        if (condition != 0)
            report(vc, "facility.condition", "must be empty without a facility name");
        if (nonempty(provides))
            report(vc, "facility.provides", "must be empty without a facility name");
    }
    return vc->count - before;
}

/* ---------------------------------------------------------------- obstacles */

int validate_obstacle(validate_ctx_t *vc, const Sentra__V1__Obstacle *o, uint64_t fields,
                      unsigned how)
{
    int before = vc->count, reported = 0, resolved = 0;
    int is_resolved = o->status == SENTRA__V1__OBSTACLE_STATUS__OBSTACLE_STATUS_RESOLVED;

    check_id(vc, "id", o->id, how & VR_ID);
    if (how & VR_SENTRA)
        check_id(vc, "sentra_id", o->sentra_id, 1);
    if (HAS(fields, 3))
        check_enum(vc, "category", o->category, 10, 1);
    if (HAS(fields, 4))
        validate_text(vc, "description", o->description, 3, 2000, TEXT_REQUIRED);
    if (HAS(fields, 5))
        check_enum(vc, "severity", o->severity, 3, 1);
    if (HAS(fields, 6))
        check_date(vc, "reported_on", o->reported_on, 1, &reported);
    if (HAS(fields, 7))
        check_enum(vc, "status", o->status, 3, 1);
    if (HAS(fields, 8) && validate_text(vc, "resolution", o->resolution, 0, 2000, 0) &&
        HAS(fields, 7) && o->status >= 1 && o->status <= 3) {
        const char *r = o->resolution ? o->resolution : "";
        size_t a = 0, n = strlen(r);
        while (a < n && (r[a] == ' ' || r[a] == '\t' || r[a] == '\n' || r[a] == '\r'))
            a++;
        if (is_resolved && a == n)
            report(vc, "resolution", "is required when the obstacle is resolved");
        else if (!is_resolved && n > 0)
            report(vc, "resolution", "must be empty until the obstacle is resolved");
    }
    if (HAS(fields, 9)) {
        int need = HAS(fields, 7) && is_resolved;
        if (HAS(fields, 7) && !is_resolved && o->status >= 1 && o->status <= 3 &&
            nonempty(o->resolved_on))
            report(vc, "resolved_on", "must be empty until the obstacle is resolved");
        else
            check_date(vc, "resolved_on", o->resolved_on, need, &resolved);
        if (resolved > 0 && reported > 0 && HAS(fields, 6) && resolved < reported)
            report(vc, "resolved_on", "is before reported_on");
    }
    if (HAS(fields, 10))
        check_id(vc, "assistance_id", o->assistance_id, 0);
    return vc->count - before;
}

/* ---------------------------------------------------------------- assistance */

int validate_assistance(validate_ctx_t *vc, const Sentra__V1__Assistance *a, uint64_t fields,
                        unsigned how)
{
    int before = vc->count;
    char f[64];

    check_id(vc, "id", a->id, how & VR_ID);
    if (how & VR_SENTRA)
        check_id(vc, "sentra_id", a->sentra_id, 1);
    if (HAS(fields, 3))
        check_enum(vc, "kind", a->kind, 7, 1);
    if (HAS(fields, 4)) {
        int cert = a->kind == SENTRA__V1__ASSISTANCE_KIND__ASSISTANCE_KIND_CERTIFICATION;
        if (a->certification != 0 && (a->certification < 1 || a->certification > 4))
            report(vc, "certification", "is not a known value");
        else if (HAS(fields, 3) && cert && a->certification == 0)
            report(vc, "certification", "is required when the kind is certification");
        else if (HAS(fields, 3) && !cert && a->certification != 0)
            report(vc, "certification", "must be empty unless the kind is certification");
    }
    if (HAS(fields, 5))
        check_enum(vc, "provider", a->provider, 5, 1);
    if (HAS(fields, 6))
        validate_text(vc, "provider_name", a->provider_name, 0, 200, TEXT_SINGLE_LINE);
    if (HAS(fields, 7))
        validate_text(vc, "programme", a->programme, 3, 200, TEXT_SINGLE_LINE | TEXT_REQUIRED);
    if (HAS(fields, 8))
        check_year(vc, "year", a->year, 1);
    if (HAS(fields, 9))
        check_count(vc, "value", a->value, VALIDATE_MONEY_MAX);
    if (HAS(fields, 10)) {
        /* Counted before the entries are looked at (validate.h). */
        if (a->n_recipient_member_ids > VALIDATE_MAX_RECIPIENTS) {
            report(vc, "recipient_member_ids", "has more than %d entries", VALIDATE_MAX_RECIPIENTS);
        } else {
            for (size_t i = 0; i < a->n_recipient_member_ids; i++) {
                const char *id = a->recipient_member_ids[i];
                int dup = 0;
                if (!quiet(vc))
                    snprintf(f, sizeof f, "recipient_member_ids[%zu]", i);
                if (!validate_uuid(id)) {
                    report(vc, f, "must be a UUID");
                    continue;
                }
                for (size_t j = 0; j < i && !dup; j++)
                    dup = a->recipient_member_ids[j] &&
                          strcasecmp(a->recipient_member_ids[j], id) == 0;
                if (dup)
                    report(vc, f, "repeats an earlier recipient");
            }
        }
    }
    return vc->count - before;
}

/* ---------------------------------------------------------------- filters */

/* A repeated enum filter: at most max entries (each known value once), each
 * 1..max. */
static void check_enum_list(validate_ctx_t *vc, const char *prefix, const char *name,
                            const int *v, size_t n, int max)
{
    char field[64];
    if (n > (size_t)max) {
        snprintf(field, sizeof field, "%s%s", prefix, name);
        report(vc, field, "has more than %d entries (one per value)", max);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i] < 1 || v[i] > max) {
            snprintf(field, sizeof field, "%s%s[%zu]", prefix, name, i);
            report(vc, field, "is not a known value");
        }
}

int validate_record_filter(validate_ctx_t *vc, const Sentra__V1__RecordFilter *f, int kind,
                           const char *prefix)
{
    int before = vc->count;
    char field[64];
    static const char *const kind_name[6] = {"", "sentra", "members", "institutions",
                                             "obstacles", "assistance"};

    if (!f)
        return 0;
    if (!prefix)
        prefix = "";
#define FIELD(name) (snprintf(field, sizeof field, "%s%s", prefix, name), field)
    if (nonempty(f->sentra_id) && !validate_uuid(f->sentra_id))
        report(vc, FIELD("sentra_id"), "must be a UUID");
    if (nonempty(f->province_code) && validate_region_code(f->province_code) != 1)
        report(vc, FIELD("province_code"), "must be a province code shaped NN");
    if (nonempty(f->regency_code) && validate_region_code(f->regency_code) != 2)
        report(vc, FIELD("regency_code"), "must be a regency code shaped NN.NN");

    /* The fields of each kind, refused for another. */
    const struct {
        int set, kind;
        const char *name;
    } own[] = {
        {f->n_size_class > 0, SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER, "size_class"},
        {f->owner_sex != 0, SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER, "owner_sex"},
        {f->current_only, SENTRA__V1__RECORD_KIND__RECORD_KIND_MEMBER, "current_only"},
        {f->n_category > 0, SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE, "category"},
        {f->n_obstacle_status > 0, SENTRA__V1__RECORD_KIND__RECORD_KIND_OBSTACLE, "obstacle_status"},
        {f->n_assistance_kind > 0, SENTRA__V1__RECORD_KIND__RECORD_KIND_ASSISTANCE, "assistance_kind"},
        {f->n_provider > 0, SENTRA__V1__RECORD_KIND__RECORD_KIND_ASSISTANCE, "provider"},
        {f->year != 0, SENTRA__V1__RECORD_KIND__RECORD_KIND_ASSISTANCE, "year"},
    };
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (own[i].set && own[i].kind != kind)
            report(vc, FIELD(own[i].name), "filters %s, not %s", kind_name[own[i].kind],
                   kind >= 1 && kind <= 5 ? kind_name[kind] : "this listing");

    check_enum_list(vc, prefix, "size_class", (const int *)f->size_class, f->n_size_class, 3);
    if (f->owner_sex != 0 && (f->owner_sex < 1 || f->owner_sex > 2))
        report(vc, FIELD("owner_sex"), "is not a known value");
    check_enum_list(vc, prefix, "category", (const int *)f->category, f->n_category, 10);
    check_enum_list(vc, prefix, "obstacle_status", (const int *)f->obstacle_status,
                    f->n_obstacle_status, 3);
    check_enum_list(vc, prefix, "assistance_kind", (const int *)f->assistance_kind,
                    f->n_assistance_kind, 7);
    check_enum_list(vc, prefix, "provider", (const int *)f->provider, f->n_provider, 5);
    if (f->year != 0 && (f->year < 1945 || f->year > 2100))
        report(vc, FIELD("year"), "must be 0 (any) or a year from 1945 to 2100");
#undef FIELD
    return vc->count - before;
}
