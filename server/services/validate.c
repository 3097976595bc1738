/*
 * validate.c: the rules of a sentra record, in pure C (see validate.h).
 *
 * The same rules are held by the database (migrations/0003_sentra.sql,
 * 0004_sentra_functions.sql); docs/DATA_MODEL.md lists them. Keep the three
 * in step: a rule added here needs its constraint there.
 */
#include "validate.h"
#include "utf8.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* 1 when the next violation would only be counted: callers skip building
 * its field path (a figures list may hold 25,000 bad entries). */
static int quiet(const validate_ctx_t *vc)
{
    return !vc->report || (vc->max > 0 && vc->count >= vc->max);
}

int validate_today(void)
{
    time_t t = time(NULL) + 9 * 3600;   /* WIT, UTC+9, no daylight saving */
    struct tm tm;

    gmtime_r(&t, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

/* ---------------------------------------------------------------- pieces */

int validate_utf8(const char *s, size_t len, size_t *chars)
{
    return sentra__utf8_valid(s, len, chars);
}

int validate_uuid(const char *s)
{
    size_t i;

    if (!s || strlen(s) != 36)
        return 0;
    for (i = 0; i < 36; i++) {
        int is_dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (is_dash) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int validate_date(const char *s, int *ymd)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d, leap;

    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
        !is_digits(s, 4) || !is_digits(s + 5, 2) || !is_digits(s + 8, 2))
        return 0;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return 0;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return 0;
    if (ymd)
        *ymd = y * 10000 + m * 100 + d;
    return 1;
}

int validate_region_code(const char *s)
{
    /* Kemendagri: NN, NN.NN, NN.NN.NN, NN.NN.NN.NNNN */
    static const size_t lens[] = {2, 5, 8, 13};
    size_t n = s ? strlen(s) : 0;

    for (int lvl = 0; lvl < 4; lvl++) {
        if (n != lens[lvl])
            continue;
        if (!is_digits(s, 2))
            return 0;
        if (lvl >= 1 && (s[2] != '.' || !is_digits(s + 3, 2)))
            return 0;
        if (lvl >= 2 && (s[5] != '.' || !is_digits(s + 6, 2)))
            return 0;
        if (lvl >= 3 && (s[8] != '.' || !is_digits(s + 9, 4)))
            return 0;
        return lvl + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- text */

int validate_text_char(int32_t cp, int multiline)
{
    if (cp < 0x20)                      /* C0 controls: line breaks and tab */
        return multiline && (cp == '\t' || cp == '\n' || cp == '\r');
    if (cp >= 0x7F && cp <= 0x9F)       /* DEL and the C1 controls (U+0085 NEL...) */
        return 0;
    if (cp == 0x200B ||                 /* zero width space */
        cp == 0x2028 || cp == 0x2029 || /* line and paragraph separators */
        (cp >= 0x202A && cp <= 0x202E) || /* bidi embeddings and overrides */
        (cp >= 0x2060 && cp <= 0x2064) || /* word joiner, invisible operators */
        (cp >= 0x2066 && cp <= 0x2069) || /* bidi isolates */
        cp == 0xFEFF ||                 /* zero width no-break space (BOM) */
        (cp >= 0xFFF9 && cp <= 0xFFFB) || /* interlinear annotation */
        (cp >= 0xE0000 && cp <= 0xE007F)) /* tags: invisible ASCII */
        return 0;
    return 1;
}

int validate_text(validate_ctx_t *vc, const char *field, const char *s,
                  size_t min, size_t max, int flags)
{
    size_t len = s ? strlen(s) : 0, chars = 0, a = 0, b = len;
    const char *p = s ? s : "", *end = p + len;

    if (!validate_utf8(p, len, &chars)) {
        report(vc, field, "is not valid UTF-8");
        return 0;
    }
    while (p < end) {
        int32_t cp = sentra__utf8_next(&p, end);
        if (validate_text_char(cp, !(flags & TEXT_SINGLE_LINE)))
            continue;
        if (cp < 0x20 || cp == 0x7F)
            report(vc, field, "contains a control character (U+%04X)", (unsigned)cp);
        else
            report(vc, field, "contains U+%04X, a control, bidirectional or invisible "
                              "formatting character that may mislead a reader", (unsigned)cp);
        return 0;
    }
    if (chars > max) {
        report(vc, field, "is longer than %zu characters", max);
        return 0;
    }
    if (flags & TEXT_REQUIRED) {
        while (a < b && s[a] == ' ')
            a++;
        while (b > a && s[b - 1] == ' ')
            b--;
        size_t trimmed = 0;
        validate_utf8(s + a, b - a, &trimmed);
        if (trimmed == 0) {
            report(vc, field, "is required");
            return 0;
        }
        if (trimmed < min) {
            report(vc, field, "must have at least %zu characters", min);
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- mask */

static const char *const field_names[VF_COUNT] = {
    "regency_code", "district_code", "village_code", "address", "location",
    "name", "commodity", "main_product", "kbli_code", "kbli_version",
    "sector_group", "status", "formed_on", "decree.number", "decree.date",
    "decree.official", "figures", "contact_name", "contact_phone",
};

const char *validate_field_name(int i)
{
    return i >= 0 && i < VF_COUNT ? field_names[i] : NULL;
}

static const char *const output_only[] = {
    "id", "version", "created_at_ms", "updated_at_ms", "created_by",
    "updated_by", "province_code", "deleted",
};

unsigned validate_mask(validate_ctx_t *vc, const char *const *paths, size_t n)
{
    unsigned bits = 0;
    int bad = 0;
    char field[48];

    if (n == 0)
        return VF_ALL;
    if (n > VALIDATE_MAX_MASK_PATHS) {
        /* Before looking at any: a mask of a million paths is refused
         * with one violation, not a million. */
        report(vc, "update_mask", "has more than %d paths", VALIDATE_MAX_MASK_PATHS);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i] ? paths[i] : "";
        unsigned b = 0;

        snprintf(field, sizeof field, "update_mask[%zu]", i);
        if (strcmp(p, "*") == 0) {
            b = VF_ALL;
        } else if (strcmp(p, "decree") == 0) {
            b = VF_DECREE_NUMBER | VF_DECREE_DATE | VF_DECREE_OFFICIAL;
        } else if (strcmp(p, "location.latitude") == 0 ||
                   strcmp(p, "location.longitude") == 0) {
            b = VF_LOCATION;        /* a point is replaced whole */
        } else {
            for (int k = 0; k < VF_COUNT; k++)
                if (strcmp(p, field_names[k]) == 0)
                    b = 1u << k;
        }
        if (!b) {
            int out = 0;
            for (size_t k = 0; k < sizeof output_only / sizeof *output_only; k++)
                if (strcmp(p, output_only[k]) == 0)
                    out = 1;
            if (out)
                report(vc, field, "%s is output only and cannot be updated", p);
            else if (sentra__printable_ascii(p) && strlen(p) <= 64)
                report(vc, field, "\"%s\" is not a field of Sentra", p);
            else
                report(vc, field, "is not a field of Sentra");   /* not echoed */
            bad = 1;
        }
        bits |= b;
    }
    return bad ? 0 : bits;
}

/* ---------------------------------------------------------------- records */

/* Checks a region code of the given level with a parent prefix (parent may
 * be NULL when unknown). Returns 1 when valid. */
static int check_code(validate_ctx_t *vc, const char *field, const char *code,
                      int level, const char *parent, const char *parent_field)
{
    static const char *const shapes[] = {"", "NN", "NN.NN", "NN.NN.NN", "NN.NN.NN.NNNN"};

    if (validate_region_code(code) != level) {
        report(vc, field, "must be a Kemendagri code shaped %s", shapes[level]);
        return 0;
    }
    if (parent && parent[0] && strncmp(code, parent, strlen(parent)) != 0) {
        report(vc, field, "is not inside %s %s", parent_field, parent);
        return 0;
    }
    return 1;
}

static void check_date_field(validate_ctx_t *vc, const char *field, const char *s,
                             int *ymd)
{
    *ymd = 0;
    if (!validate_date(s, ymd)) {
        report(vc, field, "must be a real date YYYY-MM-DD");
        *ymd = -1;
        return;
    }
    if (*ymd < 19450101) {
        report(vc, field, "is before 1945");
        *ymd = -1;
    } else if (*ymd > vc->today) {
        report(vc, field, "is in the future");
        *ymd = -1;
    }
}

static void check_count(validate_ctx_t *vc, const char *field, int64_t v, int64_t max)
{
    if (v < 0)
        report(vc, field, "must not be negative");
    else if (v > max)
        report(vc, field, "is larger than %lld", (long long)max);
}

/* Figures: returns the index of the latest year (-1 when none). */
static int check_figures(validate_ctx_t *vc, const Sentra__V1__Sentra *s)
{
    char f[96];
    int latest = -1, this_year = vc->today / 10000;

    if (s->n_figures > 100) {
        report(vc, "figures", "has more than 100 entries");
        return -1;
    }
    for (size_t i = 0; i < s->n_figures; i++) {
        const Sentra__V1__Figures *g = s->figures[i];
        int dup = 0;

        if (!g)
            continue;
        snprintf(f, sizeof f, "figures[%zu].year", i);
        for (size_t j = 0; j < i; j++)
            if (s->figures[j] && s->figures[j]->year == g->year)
                dup = 1;
        if (g->year < 1945 || g->year > this_year)
            report(vc, f, "must be a year from 1945 to %d", this_year);
        else if (dup)
            report(vc, f, "%d appears more than once", g->year);
        else if (latest < 0 || g->year > s->figures[latest]->year)
            latest = (int)i;

#define COUNT(member, max) \
        snprintf(f, sizeof f, "figures[%zu]." #member, i); \
        check_count(vc, f, g->member, max)
        COUNT(business_units, INT32_MAX);
        COUNT(workers_male, INT32_MAX);
        COUNT(workers_female, INT32_MAX);
        COUNT(investment, VALIDATE_MONEY_MAX);
        COUNT(production_value, VALIDATE_MONEY_MAX);
        COUNT(material_value, VALIDATE_MONEY_MAX);
        COUNT(capacity, INT64_MAX);
#undef COUNT
        snprintf(f, sizeof f, "figures[%zu].capacity_unit", i);
        validate_text(vc, f, g->capacity_unit, 0, 32, TEXT_SINGLE_LINE);
        snprintf(f, sizeof f, "figures[%zu].export_share_bp", i);
        if (g->export_share_bp < 0 || g->export_share_bp > 10000)
            report(vc, f, "must be between 0 and 10000 basis points");
        if (g->n_export_destinations > 250) {
            snprintf(f, sizeof f, "figures[%zu].export_destinations", i);
            report(vc, f, "has more than 250 entries");
        } else {
            for (size_t j = 0; j < g->n_export_destinations; j++) {
                const char *d = g->export_destinations[j];
                if (!d || strlen(d) != 2 || d[0] < 'A' || d[0] > 'Z' ||
                    d[1] < 'A' || d[1] > 'Z') {
                    if (!quiet(vc))
                        snprintf(f, sizeof f, "figures[%zu].export_destinations[%zu]", i, j);
                    report(vc, f, "must be an ISO 3166-1 alpha-2 code (two capital letters)");
                }
            }
        }
    }
    return latest;
}

int validate_sentra(validate_ctx_t *vc, const Sentra__V1__Sentra *s,
                    unsigned fields, int is_update)
{
    int before = vc->count;
    int regency_ok = 0, district_ok = 0, formed = 0, decreed = 0;
    const Sentra__V1__Decree *dec = s->decree;
    const char *dnum = dec && dec->number ? dec->number : "";
    const char *ddate = dec && dec->date ? dec->date : "";
    const char *doff = dec && dec->official ? dec->official : "";
    int designated = s->status == SENTRA__V1__STATUS__STATUS_DESIGNATED ||
                     s->status == SENTRA__V1__STATUS__STATUS_REVITALISED;

    /* id: a create may leave it to the server */
    if (is_update ? !validate_uuid(s->id)
                  : (s->id && s->id[0] && !validate_uuid(s->id)))
        report(vc, "id", is_update && !(s->id && s->id[0]) ? "is required"
                                                          : "must be a UUID");

    if (fields & VF_REGENCY_CODE) {
        if (!s->regency_code || !s->regency_code[0])
            report(vc, "regency_code", "is required");
        else
            regency_ok = check_code(vc, "regency_code", s->regency_code, 2, NULL, NULL);
    }
    if ((fields & VF_DISTRICT_CODE) && s->district_code && s->district_code[0]) {
        district_ok = check_code(vc, "district_code", s->district_code, 3,
                                 regency_ok ? s->regency_code : NULL, "regency");
    }
    if ((fields & VF_VILLAGE_CODE) && s->village_code && s->village_code[0]) {
        const char *parent = NULL, *pname = NULL;
        if ((fields & VF_DISTRICT_CODE) && district_ok) {
            parent = s->district_code;
            pname = "district";
        } else if (regency_ok) {
            parent = s->regency_code;
            pname = "regency";
        }
        check_code(vc, "village_code", s->village_code, 4, parent, pname);
    }
    if (fields & VF_ADDRESS)
        validate_text(vc, "address", s->address, 0, 500, 0);
    if ((fields & VF_LOCATION) && s->location) {
        double lat = s->location->latitude, lon = s->location->longitude;
        if (!isfinite(lat) || lat < -11.5 || lat > 6.5)
            report(vc, "location.latitude", "must be between -11.5 and 6.5 (Indonesia)");
        if (!isfinite(lon) || lon < 94.5 || lon > 141.5)
            report(vc, "location.longitude", "must be between 94.5 and 141.5 (Indonesia)");
    }
    if (fields & VF_NAME)
        validate_text(vc, "name", s->name, 3, 200, TEXT_SINGLE_LINE | TEXT_REQUIRED);
    if (fields & VF_COMMODITY)
        validate_text(vc, "commodity", s->commodity, 0, 200, TEXT_SINGLE_LINE);
    if (fields & VF_MAIN_PRODUCT)
        validate_text(vc, "main_product", s->main_product, 0, 200, TEXT_SINGLE_LINE);
    if (fields & VF_KBLI_CODE) {
        const char *k = s->kbli_code ? s->kbli_code : "";
        if (!k[0])
            report(vc, "kbli_code", "is required");
        else if (strlen(k) != 5 || !is_digits(k, 5))
            report(vc, "kbli_code", "must be 5 digits");
        else if (strncmp(k, "10", 2) < 0 || strncmp(k, "33", 2) > 0)
            report(vc, "kbli_code", "must be a manufacturing code (main group 10 to 33)");
    }
    if (fields & VF_KBLI_VERSION) {
        if (s->kbli_version == SENTRA__V1__KBLI_VERSION__KBLI_VERSION_UNSPECIFIED)
            report(vc, "kbli_version", "is required");
        else if (s->kbli_version != SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2020 &&
                 s->kbli_version != SENTRA__V1__KBLI_VERSION__KBLI_VERSION_2025)
            report(vc, "kbli_version", "is not a known KBLI edition");
    }
    if (fields & VF_SECTOR_GROUP) {
        if (s->sector_group == SENTRA__V1__SECTOR_GROUP__SECTOR_GROUP_UNSPECIFIED)
            report(vc, "sector_group", "is required");
        else if (s->sector_group < 1 || s->sector_group > 6)
            report(vc, "sector_group", "is not a known sector group");
    }
    if (fields & VF_STATUS) {
        if (s->status == SENTRA__V1__STATUS__STATUS_UNSPECIFIED)
            report(vc, "status", "is required");
        else if (s->status < 1 || s->status > 5)
            report(vc, "status", "is not a known status");
    }
    if ((fields & VF_FORMED_ON) && s->formed_on && s->formed_on[0])
        check_date_field(vc, "formed_on", s->formed_on, &formed);
    if (fields & VF_DECREE_NUMBER)
        validate_text(vc, "decree.number", dnum, 0, 100, TEXT_SINGLE_LINE);
    if ((fields & VF_DECREE_DATE) && ddate[0])
        check_date_field(vc, "decree.date", ddate, &decreed);
    if (fields & VF_DECREE_OFFICIAL)
        validate_text(vc, "decree.official", doff, 0, 200, TEXT_SINGLE_LINE);
    if (fields & VF_CONTACT_NAME)
        validate_text(vc, "contact_name", s->contact_name, 0, 200, TEXT_SINGLE_LINE);
    if (fields & VF_CONTACT_PHONE) {
        const char *p = s->contact_phone ? s->contact_phone : "";
        size_t n = strlen(p);
        int ok = n <= 32;
        for (size_t i = 0; ok && i < n; i++)
            ok = (p[i] >= '0' && p[i] <= '9') || strchr("+() -", p[i]);
        if (!ok)
            report(vc, "contact_phone", "must be at most 32 of 0-9 + ( ) - and space");
    }

    int latest = -1;
    if (fields & VF_FIGURES)
        latest = check_figures(vc, s);

    /* Cross-field rules, when every field involved is being written. */
    if (formed > 0 && decreed > 0 && (fields & VF_FORMED_ON) &&
        (fields & VF_DECREE_DATE) && decreed < formed)
        report(vc, "decree.date", "is before the formation date");
    if ((fields & VF_STATUS) && designated) {
        if ((fields & VF_DECREE_NUMBER) && !dnum[0])
            report(vc, "decree.number", "is required when designated or revitalised");
        if ((fields & VF_DECREE_DATE) && !ddate[0])
            report(vc, "decree.date", "is required when designated or revitalised");
        if (fields & VF_FIGURES) {
            char f[96];
            if (s->n_figures == 0) {
                report(vc, "figures", "a designated sentra needs figures with at least 5 business units");
            } else if (latest >= 0 && s->figures[latest]->business_units < 5 &&
                       s->figures[latest]->business_units >= 0) {
                snprintf(f, sizeof f, "figures[%d].business_units", latest);
                report(vc, f, "a designated sentra has at least 5 business units (latest year)");
            }
        }
    }
    return vc->count - before;
}

/* ---------------------------------------------------------------- requests */

int validate_filter(validate_ctx_t *vc, const Sentra__V1__SentraFilter *f,
                    const char *prefix)
{
    int before = vc->count;
    char field[64];

    if (!f)
        return 0;
    if (!prefix)
        prefix = "";
#define FIELD(name) (snprintf(field, sizeof field, "%s%s", prefix, name), field)
    if (f->province_code && f->province_code[0] &&
        validate_region_code(f->province_code) != 1)
        report(vc, FIELD("province_code"), "must be a province code shaped NN");
    if (f->regency_code && f->regency_code[0] &&
        validate_region_code(f->regency_code) != 2)
        report(vc, FIELD("regency_code"), "must be a regency code shaped NN.NN");
    /* Repeated fields are counted before their entries are looked at: a
     * 4 MiB request holds four million of them. Each list names each known
     * value at most once, so it needs no more entries than there are. */
    if (f->n_status > VALIDATE_MAX_STATUS_FILTER) {
        report(vc, FIELD("status"), "has more than %d entries (one per status)",
               VALIDATE_MAX_STATUS_FILTER);
    } else {
        for (size_t i = 0; i < f->n_status; i++)
            if (f->status[i] < 1 || f->status[i] > 5) {
                snprintf(field, sizeof field, "%sstatus[%zu]", prefix, i);
                report(vc, field, "is not a known status");
            }
    }
    if (f->n_sector_group > VALIDATE_MAX_SECTOR_FILTER) {
        report(vc, FIELD("sector_group"), "has more than %d entries (one per sector group)",
               VALIDATE_MAX_SECTOR_FILTER);
    } else {
        for (size_t i = 0; i < f->n_sector_group; i++)
            if (f->sector_group[i] < 1 || f->sector_group[i] > 6) {
                snprintf(field, sizeof field, "%ssector_group[%zu]", prefix, i);
                report(vc, field, "is not a known sector group");
            }
    }
    if (f->kbli_prefix && f->kbli_prefix[0] &&
        (strlen(f->kbli_prefix) > 5 || !is_digits(f->kbli_prefix, strlen(f->kbli_prefix))))
        report(vc, FIELD("kbli_prefix"), "must be 1 to 5 digits");
    if (f->designation < 0 || f->designation > 2)
        report(vc, FIELD("designation"), "is not a known designation filter");
    if (f->text && f->text[0])
        validate_text(vc, FIELD("text"), f->text, 0, 100, TEXT_SINGLE_LINE);
    if (f->updated_since_ms < 0)
        report(vc, FIELD("updated_since_ms"), "must not be negative");
    else if (f->updated_since_ms > VALIDATE_MAX_TIME_MS)
        report(vc, FIELD("updated_since_ms"), "must be a time before the year 10000 "
                                              "(Unix milliseconds)");
#undef FIELD
    return vc->count - before;
}
