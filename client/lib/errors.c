/*
 * errors.c: the library's error table and the sentra_status_t helpers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "status.h"

const char *sentra_strerror(int err)
{
    switch (err) {
    case SENTRA_EOK: return "success";
#define XX(name, val, msg) case SENTRA_##name: return msg;
    SENTRA_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

const char *sentra_err_name(int err)
{
    switch (err) {
    case SENTRA_EOK: return "SENTRA_EOK";
#define XX(name, val, msg) case SENTRA_##name: return "SENTRA_" #name;
    SENTRA_ERRNO_MAP(XX)
#undef XX
    }
    return "SENTRA_EUNKNOWN";
}

int sentra__err_code(int err)
{
    switch (err) {
    case SENTRA_EOK: return SENTRA_OK;
    case SENTRA_EINVAL: case SENTRA_EADDR: return SENTRA_INVALID_ARGUMENT;
    case SENTRA_ENOMEM: case SENTRA_ETOOBIG: return SENTRA_RESOURCE_EXHAUSTED;
    case SENTRA_ECONNECT: case SENTRA_ECONNLOST: case SENTRA_EIO: case SENTRA_ETLS: return SENTRA_UNAVAILABLE;
    case SENTRA_ETIMEDOUT: return SENTRA_DEADLINE_EXCEEDED;
    case SENTRA_ECANCELED: case SENTRA_ECLOSED: return SENTRA_CANCELLED;
    case SENTRA_EPROTO: case SENTRA_EDECODE: return SENTRA_INTERNAL;
    case SENTRA_ESYNC: return SENTRA_ABORTED;
    }
    return SENTRA_UNKNOWN;
}

char *sentra__strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void sentra_status_init(sentra_status_t *st)
{
    memset(st, 0, sizeof *st);
}

void sentra_status_clear(sentra_status_t *st)
{
    if (!st)
        return;
    free(st->message);
    for (size_t i = 0; i < st->n_violations; i++) {
        free(st->violations[i].field);
        free(st->violations[i].description);
    }
    free(st->violations);
    memset(st, 0, sizeof *st);
}

int sentra_status_copy(sentra_status_t *dst, const sentra_status_t *src)
{
    memset(dst, 0, sizeof *dst);
    dst->code = src->code;
    dst->current_version = src->current_version;
    dst->local = src->local;
    if (src->message && !(dst->message = strdup(src->message)))
        goto nomem;
    if (src->n_violations) {
        dst->violations = calloc(src->n_violations, sizeof *dst->violations);
        if (!dst->violations)
            goto nomem;
        dst->n_violations = src->n_violations;
        for (size_t i = 0; i < src->n_violations; i++) {
            dst->violations[i].field = strdup(src->violations[i].field ? src->violations[i].field : "");
            dst->violations[i].description =
                strdup(src->violations[i].description ? src->violations[i].description : "");
            if (!dst->violations[i].field || !dst->violations[i].description)
                goto nomem;
        }
    }
    return 0;
nomem:
    sentra_status_clear(dst);
    return SENTRA_ENOMEM;
}

int sentra__local_status(sentra_status_t *st, int err, int code, const char *fmt, ...)
{
    sentra_status_clear(st);
    st->code = code;
    st->local = 1;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&st->message, fmt, ap) < 0)
            st->message = NULL;
        va_end(ap);
    }
    return err;
}

int sentra__status_from_response(sentra_status_t *st, const Sentra__V1__Response *r)
{
    sentra_status_clear(st);
    st->code = r->code;
    st->current_version = r->current_version;
    if (r->message && r->message[0] && !(st->message = strdup(r->message)))
        goto nomem;
    if (r->n_violations) {
        st->violations = calloc(r->n_violations, sizeof *st->violations);
        if (!st->violations)
            goto nomem;
        st->n_violations = r->n_violations;
        for (size_t i = 0; i < r->n_violations; i++) {
            const Sentra__V1__FieldViolation *v = r->violations[i];
            st->violations[i].field = strdup(v->field ? v->field : "");
            st->violations[i].description = strdup(v->description ? v->description : "");
            if (!st->violations[i].field || !st->violations[i].description)
                goto nomem;
        }
    }
    return 0;
nomem:
    sentra_status_clear(st);
    st->code = r->code;
    return SENTRA_ENOMEM;
}

int sentra_method_is_read(const char *method)
{
    if (!method)
        return 0;
    const char *m = strrchr(method, '/');
    if (!m)
        return 0;
    m++;
    return strncmp(m, "Get", 3) == 0 || strncmp(m, "List", 4) == 0 ||
           strcmp(m, "PullChanges") == 0 || strcmp(m, "StreamChanges") == 0 ||
           strcmp(m, "Check") == 0 || strcmp(m, "Ping") == 0 || strcmp(m, "Sleep") == 0 ||
           strcmp(m, "WhoAmI") == 0;
}
