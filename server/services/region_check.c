/*
 * region_check.c: the database's region rules for records that broke other
 * rules (see region_check.h).
 */
#include <string.h>

#include "region_check.h"
#include "server.h"
#include "validate.h"

int sentra__region_codes(const Sentra__V1__Sentra *s, unsigned fields, region_codes_t *out)
{
    const char *r = s->regency_code, *d = s->district_code, *v = s->village_code;
    int r_ok = (fields & VF_REGENCY_CODE) && validate_region_code(r) == 2;

    memset(out, 0, sizeof *out);
    /* The same shape and containment rules as validate_sentra's codes: a
     * code it refused is not asked about again. */
    if (r_ok)
        out->regency = r;
    if ((fields & VF_DISTRICT_CODE) && validate_region_code(d) == 3 &&
        (!r_ok || strncmp(d, r, strlen(r)) == 0))
        out->district = d;
    if ((fields & VF_VILLAGE_CODE) && validate_region_code(v) == 4) {
        const char *parent = out->district ? out->district : r_ok ? r : NULL;
        if (!parent || strncmp(v, parent, strlen(parent)) == 0)
            out->village = v;
    }
    return out->regency || out->district || out->village;
}

/* $1..$3 the codes of each record as text[] (NULL where not asked: such a
 * record costs no lookup), $4 the
 * stored record of an update without its regency, $5 role, $6 region. The
 * record handed to sentra_violations holds nothing but the codes, so only
 * its region rules can speak; the field filter keeps it so if that
 * function learns rules about other columns. */
static db_stmt_t check_stmt = {
    "SELECT x.i - 1, split_part(l, ': ', 1), substr(l, strpos(l, ': ') + 2)"
    " FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS x(regency, district, village, i)"
    " CROSS JOIN LATERAL unnest(CASE WHEN coalesce(x.regency, x.district, x.village) IS NOT NULL"
    " THEN sentra_violations(jsonb_populate_record(NULL::sentra,"
    " jsonb_build_object('regency_code', coalesce(x.regency, (SELECT s.regency_code FROM sentra s"
    " WHERE s.id = $4::uuid AND s.deleted_at IS NULL"
    " AND sentra_can_read($5, $6, s.regency_code, s.province_code))),"
    " 'district_code', x.district, 'village_code', x.village)), NULL, false) END) AS l"
    " WHERE split_part(l, ': ', 1) IN ('regency_code', 'district_code', 'village_code')"
    " ORDER BY 1",
    0, 0};

/* "{18.71,NULL,...}": codes are digits and dots (their shape is checked),
 * nothing to quote. */
static const char *code_array(call_t *c, const region_codes_t *codes, size_t n, int which)
{
    char *s = call_alloc(c, n * 15 + 3), *p = s;

    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        const char *v = which == 0 ? codes[i].regency : which == 1 ? codes[i].district
                                                                   : codes[i].village;
        size_t len = v ? strlen(v) : 4;
        if (i)
            *p++ = ',';
        memcpy(p, v ? v : "NULL", len);
        p += len;
    }
    *p++ = '}';
    *p = '\0';
    return s;
}

int sentra__region_check(call_t *c, const region_codes_t *codes, size_t n,
                         const char *stored_id, call_db_cb cb)
{
    const char *v[6];

    if (db_pool_ready(c->srv->db) == 0)
        return 0;
    v[0] = code_array(c, codes, n, 0);
    v[1] = code_array(c, codes, n, 1);
    v[2] = code_array(c, codes, n, 2);
    v[3] = stored_id;
    v[4] = auth_role_name(c->auth.role);
    v[5] = c->auth.region;
    call_query(c, &check_stmt, 6, v, cb);
    return 1;
}
