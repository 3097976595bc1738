/*
 * migrate.h: the schema migrations runner.
 *
 * Migrations are the files migrations/NNNN_name.sql (four digits, then
 * lower-case letters, digits and underscores). Each is applied once, in
 * version order, in its own transaction, and recorded in the table
 * schema_migrations (version, name, checksum = sha256 hex of the file's
 * bytes, applied_at). A file may hold any number of statements, including
 * plpgsql $$ bodies; it must not contain BEGIN/COMMIT of its own, nor
 * statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY).
 *
 * These functions use blocking libpq: they run before the event loop.
 */
#ifndef SENTRA_MIGRATE_H
#define SENTRA_MIGRATE_H

#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

/* Applies every pending migration in dir, in order, each in its own
 * transaction, creating schema_migrations if it is missing. Concurrent
 * runners (several servers starting at once) are serialised with a
 * session-level pg_advisory_lock, held until the function returns.
 *
 * Refuses, changing nothing, and returns -1 with a one-line reason in err
 * when: a file in dir is misnamed (*.sql not matching NNNN_name.sql) or two
 * files share a version; an applied migration's file is missing (the
 * database is newer than this binary) or its checksum or name differ (it
 * was edited after being applied); a pending migration's version is lower
 * than the highest applied one (out of order). A migration that fails
 * stops the run after its transaction is rolled back; those applied before
 * it stay applied. The return value is then -1 too.
 *
 * dry_run: makes all the checks and lists the pending migrations on stderr,
 * but applies nothing and creates nothing.
 *
 * conn: an open connection (not taken over; its session settings are left
 * as found). err: at least 256 bytes advised. Returns the number of
 * migrations applied (dry_run: that would be applied), >= 0, or -1. */
int migrate_run(PGconn *conn, const char *dir, int dry_run, char *err, size_t errlen);

/* Writes one line per migration to out: "applied  NNNN_name.sql  <time>",
 * "pending  NNNN_name.sql", and for problems "changed" (checksum or name
 * differs from what was applied), "missing" (applied, no file: schema newer
 * than this binary), "order" (pending below the highest applied). Returns
 * the number of pending migrations, or -1 with the reason in err when the
 * directory is unusable or any problem line was written. */
int migrate_status(PGconn *conn, const char *dir, FILE *out, char *err, size_t errlen);

#endif
