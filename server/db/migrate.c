/*
 * migrate.c: applies migrations/NNNN_name.sql files in order, each once, in
 * its own transaction, and keeps the record in schema_migrations.
 *
 * The runner reads every file first, checks the whole picture (names,
 * duplicates, checksums of what was applied, versions the database has but
 * this binary lacks) and only then changes anything, so a refusal leaves
 * the database as it was. Checksums are computed by PostgreSQL
 * (sha256(bytea)), which saves linking a crypto library for this.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "migrate.h"

/* pg_advisory_lock key: "sentra" in ASCII, read as a number. Every runner
 * takes it, so two servers starting together apply each migration once. */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_lock(126896789452385)"
#define MIGRATE_UNLOCK_SQL "SELECT pg_advisory_unlock(126896789452385)"

#define MAX_FILE_BYTES (64u << 20)
#define MAX_NAME 128

/* ---------------------------------------------------------------- types */

enum mstate {
    M_PENDING,      /* file, not applied */
    M_APPLIED,      /* file, applied with the same name and checksum */
    M_CHANGED,      /* file, applied with another checksum or name */
    M_ORDER,        /* file, not applied, below the highest applied version */
    M_MISSING       /* applied, no file */
};

typedef struct mfile {
    int version;
    char name[MAX_NAME];    /* file name without ".sql": "0001_regions" */
    char *sql;              /* contents, NUL-terminated */
    size_t len;             /* bytes in sql */
    char checksum[65];      /* sha256 hex of the contents */
} mfile_t;

typedef struct mapplied {
    int version;
    char name[MAX_NAME];
    char checksum[65];
    char applied_at[64];
} mapplied_t;

typedef struct plan {
    mfile_t *files;         /* sorted by version */
    int nfiles;
    mapplied_t *applied;    /* sorted by version */
    int napplied;
    int max_applied;        /* highest applied version, 0 if none */
} plan_t;

/* ---------------------------------------------------------------- helpers */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The primary message of a failed result, without libpq's "ERROR:  "
 * prefix and trailing newline. */
static const char *pg_msg(const PGresult *r, PGconn *conn)
{
    const char *m = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (m == NULL)
        m = PQerrorMessage(conn);
    return m;
}

/* Runs a statement that returns nothing interesting. */
static int exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        seterr(err, errlen, "%s: %s", sql, pg_msg(r, conn));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* ---------------------------------------------------------------- files */

/* Whether fname is NNNN_name.sql; sets *version. name: [a-z0-9_]+. */
static int name_ok(const char *fname, int *version)
{
    size_t n = strlen(fname);
    if (n < 10 || n - 4 >= MAX_NAME || strcmp(fname + n - 4, ".sql") != 0)
        return 0;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)fname[i]))
            return 0;
    if (fname[4] != '_')
        return 0;
    for (size_t i = 5; i < n - 4; i++) {
        char ch = fname[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return 0;
    }
    *version = (fname[0] - '0') * 1000 + (fname[1] - '0') * 100 + (fname[2] - '0') * 10 +
               (fname[3] - '0');
    return *version > 0;
}

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > MAX_FILE_BYTES) {
        seterr(err, errlen, "%s is not a regular file of at most %u bytes", path,
               MAX_FILE_BYTES);
        fclose(f);
        return -1;
    }
    size_t len = (size_t)sb.st_size;
    char *buf = malloc(len + 1);
    if (buf == NULL) {
        seterr(err, errlen, "out of memory reading %s", path);
        fclose(f);
        return -1;
    }
    size_t got = fread(buf, 1, len, f);
    int bad = ferror(f) || got != len;
    fclose(f);
    if (bad) {
        seterr(err, errlen, "cannot read %s", path);
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        seterr(err, errlen, "%s contains a NUL byte", path);
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

static int cmp_file(const void *a, const void *b)
{
    const mfile_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static void free_plan(plan_t *p)
{
    for (int i = 0; i < p->nfiles; i++)
        free(p->files[i].sql);
    free(p->files);
    free(p->applied);
    memset(p, 0, sizeof(*p));
}

/* Reads every *.sql in dir into p->files, sorted. Other files (README,
 * editor backups not ending in .sql, dot files) are ignored. */
static int scan_dir(plan_t *p, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        seterr(err, errlen, "cannot open migrations directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int cap = 0, rc = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *fn = e->d_name;
        size_t n = strlen(fn);
        if (fn[0] == '.' || n < 4 || strcmp(fn + n - 4, ".sql") != 0)
            continue;
        int version;
        if (!name_ok(fn, &version)) {
            seterr(err, errlen,
                   "misnamed migration %s/%s: want NNNN_name.sql (4 digits from 0001, "
                   "then lower-case letters, digits, _)", dir, fn);
            goto out;
        }
        if (p->nfiles == cap) {
            cap = cap ? cap * 2 : 16;
            mfile_t *nf = realloc(p->files, (size_t)cap * sizeof(*nf));
            if (nf == NULL) {
                seterr(err, errlen, "out of memory");
                goto out;
            }
            p->files = nf;
        }
        mfile_t *f = &p->files[p->nfiles];
        memset(f, 0, sizeof(*f));
        f->version = version;
        snprintf(f->name, sizeof(f->name), "%.*s", (int)(n - 4), fn);
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, fn);
        if (read_file(path, &f->sql, &f->len, err, errlen) != 0)
            goto out;
        p->nfiles++;
    }
    if (p->nfiles > 0)
        qsort(p->files, (size_t)p->nfiles, sizeof(mfile_t), cmp_file);
    for (int i = 1; i < p->nfiles; i++) {
        if (p->files[i].version == p->files[i - 1].version) {
            seterr(err, errlen, "two migrations with version %04d in %s: %s.sql and %s.sql",
                   p->files[i].version, dir, p->files[i - 1].name, p->files[i].name);
            goto out;
        }
    }
    rc = 0;
out:
    closedir(d);
    return rc;
}

/* ---------------------------------------------------------------- database */

static int checksum_files(PGconn *conn, plan_t *p, char *err, size_t errlen)
{
    static const Oid types[1] = { 17 /* bytea */ };
    static const int formats[1] = { 1 };
    for (int i = 0; i < p->nfiles; i++) {
        mfile_t *f = &p->files[i];
        const char *vals[1] = { f->sql };
        int lens[1] = { (int)f->len };
        PGresult *r = PQexecParams(conn, "SELECT encode(sha256($1), 'hex')", 1, types, vals,
                                   lens, formats, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
            strlen(PQgetvalue(r, 0, 0)) != 64) {
            seterr(err, errlen, "checksum of %s.sql: %s", f->name, pg_msg(r, conn));
            PQclear(r);
            return -1;
        }
        memcpy(f->checksum, PQgetvalue(r, 0, 0), 65);
        PQclear(r);
    }
    return 0;
}

static int load_applied(PGconn *conn, plan_t *p, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        seterr(err, errlen, "cannot read schema_migrations: %s", pg_msg(r, conn));
        PQclear(r);
        return -1;
    }
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists)
        return 0;
    r = PQexec(conn, "SELECT version, name, checksum, "
                     "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' "
                     "FROM schema_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        seterr(err, errlen, "cannot read schema_migrations: %s", pg_msg(r, conn));
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    p->applied = calloc((size_t)(n > 0 ? n : 1), sizeof(mapplied_t));
    if (p->applied == NULL) {
        PQclear(r);
        seterr(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        mapplied_t *a = &p->applied[i];
        a->version = atoi(PQgetvalue(r, i, 0));
        snprintf(a->name, sizeof(a->name), "%s", PQgetvalue(r, i, 1));
        snprintf(a->checksum, sizeof(a->checksum), "%s", PQgetvalue(r, i, 2));
        snprintf(a->applied_at, sizeof(a->applied_at), "%s", PQgetvalue(r, i, 3));
        if (a->version > p->max_applied)
            p->max_applied = a->version;
    }
    p->napplied = n;
    PQclear(r);
    return 0;
}

static const mapplied_t *find_applied(const plan_t *p, int version)
{
    for (int i = 0; i < p->napplied; i++)
        if (p->applied[i].version == version)
            return &p->applied[i];
    return NULL;
}

static const mfile_t *find_file(const plan_t *p, int version)
{
    for (int i = 0; i < p->nfiles; i++)
        if (p->files[i].version == version)
            return &p->files[i];
    return NULL;
}

static enum mstate file_state(const plan_t *p, const mfile_t *f, const mapplied_t **ap)
{
    const mapplied_t *a = find_applied(p, f->version);
    *ap = a;
    if (a == NULL)
        return f->version < p->max_applied ? M_ORDER : M_PENDING;
    if (strcmp(a->checksum, f->checksum) != 0 || strcmp(a->name, f->name) != 0)
        return M_CHANGED;
    return M_APPLIED;
}

/* The first reason to refuse, in err; -1 if there is one. */
static int check_plan(const plan_t *p, const char *dir, char *err, size_t errlen)
{
    for (int i = 0; i < p->napplied; i++) {
        const mapplied_t *a = &p->applied[i];
        if (find_file(p, a->version) == NULL) {
            seterr(err, errlen,
                   "the database has migration %s (applied %s) but %s has no %04d_*.sql: "
                   "the schema is newer than this sentrad; run a newer sentrad",
                   a->name, a->applied_at, dir, a->version);
            return -1;
        }
    }
    for (int i = 0; i < p->nfiles; i++) {
        const mfile_t *f = &p->files[i];
        const mapplied_t *a;
        switch (file_state(p, f, &a)) {
        case M_CHANGED:
            if (strcmp(a->name, f->name) != 0)
                seterr(err, errlen,
                       "migration %04d was applied as %s.sql but the file is now %s.sql; "
                       "applied migrations must not be renamed", f->version, a->name, f->name);
            else
                seterr(err, errlen,
                       "migration %s.sql was changed after it was applied on %s (checksum "
                       "%.12s... in the database, %.12s... on disk); restore the file and "
                       "put the change in a new migration", f->name, a->applied_at,
                       a->checksum, f->checksum);
            return -1;
        case M_ORDER:
            seterr(err, errlen,
                   "migration %s.sql is pending but the later version %04d is already "
                   "applied; renumber it after %04d", f->name, p->max_applied, p->max_applied);
            return -1;
        default:
            break;
        }
    }
    return 0;
}

/* The line of a 1-based character position in sql (UTF-8). */
static int line_of(const char *sql, long pos)
{
    int line = 1;
    long chars = 0;
    for (const unsigned char *s = (const unsigned char *)sql; *s; s++) {
        if ((*s & 0xC0) != 0x80 && ++chars >= pos)
            break;
        if (*s == '\n')
            line++;
    }
    return line;
}

static int apply_one(PGconn *conn, const mfile_t *f, char *err, size_t errlen)
{
    if (exec_ok(conn, "BEGIN", err, errlen) != 0)
        return -1;
    PGresult *r = PQexec(conn, f->sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        char where[32] = "";
        if (pos != NULL)
            snprintf(where, sizeof(where), ", line %d", line_of(f->sql, atol(pos)));
        seterr(err, errlen, "migration %s.sql failed%s: %s%s%s (rolled back)", f->name, where,
               pg_msg(r, conn), detail ? ": " : "", detail ? detail : "");
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(r);
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        seterr(err, errlen,
               "migration %s.sql ended its own transaction (COMMIT or ROLLBACK in the file); "
               "it may be partly applied and was not recorded", f->name);
        return -1;
    }
    char version[16];
    snprintf(version, sizeof(version), "%d", f->version);
    const char *vals[3] = { version, f->name, f->checksum };
    r = PQexecParams(conn,
                     "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                     3, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        seterr(err, errlen, "recording migration %s.sql: %s", f->name, pg_msg(r, conn));
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    PQclear(r);
    r = PQexec(conn, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        seterr(err, errlen, "migration %s.sql failed at commit: %s", f->name, pg_msg(r, conn));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* ---------------------------------------------------------------- API */

int migrate_run(PGconn *conn, const char *dir, int dry_run, char *err, size_t errlen)
{
    plan_t p;
    memset(&p, 0, sizeof(p));
    seterr(err, errlen, "unknown error");
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        seterr(err, errlen, "no database connection");
        return -1;
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        seterr(err, errlen, "the connection is inside a transaction");
        return -1;
    }
    if (scan_dir(&p, dir, err, errlen) != 0) {
        free_plan(&p);
        return -1;
    }

    int rc = -1, locked = 0, applied = 0;
    char old_level[32] = "";

    /* Only warnings and worse from the migrations reach stderr: the NOTICEs
     * of "IF NOT EXISTS" and the like would be noise at every start. The
     * session's setting is put back afterwards. */
    PGresult *r = PQexec(conn, "SELECT current_setting('client_min_messages')");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(old_level, sizeof(old_level), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (old_level[0] && exec_ok(conn, "SET client_min_messages = warning", err, errlen) != 0)
        goto out;
    if (exec_ok(conn, MIGRATE_LOCK_SQL, err, errlen) != 0)
        goto out;
    locked = 1;
    if (!dry_run &&
        exec_ok(conn,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY CHECK (version > 0),"
                " name text NOT NULL,"
                " checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                err, errlen) != 0)
        goto out;
    if (load_applied(conn, &p, err, errlen) != 0 || checksum_files(conn, &p, err, errlen) != 0 ||
        check_plan(&p, dir, err, errlen) != 0)
        goto out;

    for (int i = 0; i < p.nfiles; i++) {
        const mapplied_t *a;
        if (file_state(&p, &p.files[i], &a) != M_PENDING)
            continue;
        if (dry_run) {
            fprintf(stderr, "sentrad: migration %s.sql is pending (not applied)\n",
                    p.files[i].name);
        } else if (apply_one(conn, &p.files[i], err, errlen) != 0) {
            goto out;
        }
        applied++;
    }
    rc = applied;
out:
    if (locked && PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, MIGRATE_UNLOCK_SQL));
    if (old_level[0] && PQstatus(conn) == CONNECTION_OK) {
        const char *vals[1] = { old_level };
        PQclear(PQexecParams(conn, "SELECT set_config('client_min_messages', $1, false)", 1,
                             NULL, vals, NULL, NULL, 0));
    }
    free_plan(&p);
    if (rc >= 0 && err != NULL && errlen > 0)
        err[0] = '\0';
    return rc;
}

int migrate_status(PGconn *conn, const char *dir, FILE *out, char *err, size_t errlen)
{
    plan_t p;
    memset(&p, 0, sizeof(p));
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        seterr(err, errlen, "no database connection");
        return -1;
    }
    if (scan_dir(&p, dir, err, errlen) != 0 || load_applied(conn, &p, err, errlen) != 0 ||
        checksum_files(conn, &p, err, errlen) != 0) {
        free_plan(&p);
        return -1;
    }

    /* One merged walk over files and applied rows, in version order. */
    int problems = 0, pending = 0, fi = 0, ai = 0;
    while (fi < p.nfiles || ai < p.napplied) {
        int fv = fi < p.nfiles ? p.files[fi].version : 1 << 30;
        int av = ai < p.napplied ? p.applied[ai].version : 1 << 30;
        if (av < fv) {
            fprintf(out, "missing  %s.sql  applied %s, no such file: schema newer than this "
                         "sentrad\n", p.applied[ai].name, p.applied[ai].applied_at);
            problems++;
            ai++;
            continue;
        }
        const mfile_t *f = &p.files[fi];
        const mapplied_t *a;
        switch (file_state(&p, f, &a)) {
        case M_APPLIED:
            fprintf(out, "applied  %s.sql  %s\n", f->name, a->applied_at);
            break;
        case M_PENDING:
            fprintf(out, "pending  %s.sql\n", f->name);
            pending++;
            break;
        case M_CHANGED:
            fprintf(out, "changed  %s.sql  applied %s as %s.sql, checksum %.12s..., file now "
                         "%.12s...\n", f->name, a->applied_at, a->name, a->checksum,
                    f->checksum);
            problems++;
            break;
        case M_ORDER:
            fprintf(out, "order    %s.sql  pending below applied version %04d\n", f->name,
                    p.max_applied);
            problems++;
            break;
        case M_MISSING:
            break;
        }
        fi++;
        if (av == fv)
            ai++;
    }
    free_plan(&p);
    if (problems > 0) {
        seterr(err, errlen, "%d problem%s with the applied migrations (see above)", problems,
               problems == 1 ? "" : "s");
        return -1;
    }
    return pending;
}
