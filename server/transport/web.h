/*
 * web.h: the static files of the web dashboard, served at "/" by the HTTP
 * transports from the --web-root directory.
 *
 * The whole directory is read into memory when the server starts (the
 * dashboard is a few files; at most WEB_MAX_FILES files and WEB_MAX_BYTES
 * bytes), so that serving a file never blocks the loop on the disk and no
 * request can name a file outside the set that was read: a path is looked
 * up, never opened. Files whose names start with '.' are skipped;
 * directories reached through symbolic links are not entered. Changed
 * files are served after a restart.
 */
#ifndef SENTRA_WEB_H
#define SENTRA_WEB_H

#include <stddef.h>
#include <stdint.h>

#define WEB_MAX_FILES 2000
#define WEB_MAX_BYTES (128u * 1024 * 1024)

typedef struct web_file {
    char *path;                 /* URL path, "/index.html" */
    uint8_t *data;              /* contents */
    size_t len;
    const char *content_type;   /* from the extension */
    char etag[24];              /* quoted hash of the contents */
    const char *cache_control;  /* "no-cache", or immutable under /assets/ */
} web_file_t;

typedef struct web {
    web_file_t *files;          /* sorted by path */
    size_t n;
    size_t bytes;               /* contents in all */
} web_t;

/* Reads every file under root. Returns the set (web_free it), or NULL with
 * the reason in err (a missing directory, too many files or bytes). */
web_t *web_load(const char *root, char *err, size_t errlen);

/* The file for a request path (percent-decoded, no query): "/" and paths
 * ending in '/' mean their index.html. NULL when there is none, or when
 * path has a "." or ".." segment, a NUL or a backslash. */
const web_file_t *web_find(const web_t *w, const char *path);

/* web_find for a path as it came in a request line or :path, len bytes
 * (no query), percent-encoded: a bad escape or an encoded NUL finds
 * nothing. */
const web_file_t *web_find_encoded(const web_t *w, const char *path, size_t len);

void web_free(web_t *w);

/* The security headers every HTTP answer carries (HTTP/1.1 and HTTP/2),
 * the values once, then as HTTP/1.1 lines "Name: value\r\n". The
 * Content-Security-Policy allows no inline script or style and nothing
 * from another origin. */
#define WEB_CSP                                                                               \
    "default-src 'self'; script-src 'self'; style-src 'self'; "                               \
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "          \
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
#define WEB_REFERRER_POLICY "no-referrer"
#define WEB_FRAME_OPTIONS "DENY"
#define WEB_SECURITY_HEADERS                                                                  \
    "X-Content-Type-Options: nosniff\r\n"                                                     \
    "Content-Security-Policy: " WEB_CSP "\r\n"                                                \
    "Referrer-Policy: " WEB_REFERRER_POLICY "\r\n"                                            \
    "X-Frame-Options: " WEB_FRAME_OPTIONS "\r\n"

#endif
