/*
 * web.c: the dashboard's static files, read once at start (web.h says
 * why and what is skipped).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "web.h"

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    { "html", "text/html; charset=utf-8" },
    { "htm", "text/html; charset=utf-8" },
    { "js", "text/javascript; charset=utf-8" },
    { "mjs", "text/javascript; charset=utf-8" },
    { "css", "text/css; charset=utf-8" },
    { "json", "application/json" },
    { "geojson", "application/geo+json" },
    { "topojson", "application/json" },
    { "map", "application/json" },
    { "svg", "image/svg+xml" },
    { "png", "image/png" },
    { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },
    { "gif", "image/gif" },
    { "webp", "image/webp" },
    { "ico", "image/x-icon" },
    { "woff", "font/woff" },
    { "woff2", "font/woff2" },
    { "ttf", "font/ttf" },
    { "otf", "font/otf" },
    { "txt", "text/plain; charset=utf-8" },
    { "md", "text/markdown; charset=utf-8" },
    { "csv", "text/csv; charset=utf-8" },
    { "xml", "application/xml" },
    { "pdf", "application/pdf" },
    { "wasm", "application/wasm" },
    { "webmanifest", "application/manifest+json" },
};

static const char *type_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot != NULL)
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

typedef struct loader {
    web_t *w;
    size_t cap;
    char *err;
    size_t errlen;
} loader_t;

static int add_file(loader_t *ld, const char *fs_path, const char *url, size_t size)
{
    web_t *w = ld->w;
    if (w->n >= WEB_MAX_FILES) {
        snprintf(ld->err, ld->errlen, "more than %d files", WEB_MAX_FILES);
        return -1;
    }
    if (size > WEB_MAX_BYTES - w->bytes) {
        snprintf(ld->err, ld->errlen, "more than %u bytes of files", WEB_MAX_BYTES);
        return -1;
    }
    FILE *f = fopen(fs_path, "rb");
    if (f == NULL) {
        snprintf(ld->err, ld->errlen, "cannot read %s: %s", fs_path, strerror(errno));
        return -1;
    }
    uint8_t *data = malloc(size ? size : 1);
    if (data == NULL)
        abort();
    size_t got = fread(data, 1, size, f);
    fclose(f);
    if (got != size) {
        free(data);
        snprintf(ld->err, ld->errlen, "short read of %s", fs_path);
        return -1;
    }
    if (w->n == ld->cap) {
        ld->cap = ld->cap ? ld->cap * 2 : 32;
        web_file_t *p = realloc(w->files, ld->cap * sizeof(*p));
        if (p == NULL)
            abort();
        w->files = p;
    }
    web_file_t *wf = &w->files[w->n++];
    memset(wf, 0, sizeof(*wf));
    wf->path = strdup(url);
    if (wf->path == NULL)
        abort();
    wf->data = data;
    wf->len = size;
    wf->content_type = type_of(url);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++) {
        h ^= data[i];
        h *= 1099511628211ull;
    }
    snprintf(wf->etag, sizeof(wf->etag), "\"%016llx\"", (unsigned long long)h);
    /* Files under /assets/ are expected to carry a hash of their contents
     * in their names (a build's output): cached for a year. Everything
     * else is revalidated at each use (a 304 when unchanged). */
    wf->cache_control = strncmp(url, "/assets/", 8) == 0 ? "public, max-age=31536000, immutable" : "no-cache";
    w->bytes += size;
    return 0;
}

static int walk(loader_t *ld, const char *dir, const char *url, int depth)
{
    if (depth > 16) {
        snprintf(ld->err, ld->errlen, "directories nested more than 16 deep under the web root");
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(ld->err, ld->errlen, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char fs[4096], u[2048];
        if (snprintf(fs, sizeof(fs), "%s/%s", dir, e->d_name) >= (int)sizeof(fs) ||
            snprintf(u, sizeof(u), "%s/%s", url, e->d_name) >= (int)sizeof(u))
            continue;
        struct stat lst, st;
        if (lstat(fs, &lst) != 0 || stat(fs, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (!S_ISLNK(lst.st_mode))
                rc = walk(ld, fs, u, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            rc = add_file(ld, fs, u, (size_t)st.st_size);
        }
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const web_file_t *)a)->path, ((const web_file_t *)b)->path);
}

web_t *web_load(const char *root, char *err, size_t errlen)
{
    loader_t ld = { .err = err, .errlen = errlen };
    ld.w = calloc(1, sizeof(*ld.w));
    if (ld.w == NULL)
        abort();
    if (walk(&ld, root, "", 0) != 0) {
        web_free(ld.w);
        return NULL;
    }
    if (ld.w->n > 0)
        qsort(ld.w->files, ld.w->n, sizeof(*ld.w->files), by_path);
    return ld.w;
}

const web_file_t *web_find(const web_t *w, const char *path)
{
    if (w == NULL || path[0] != '/' || strchr(path, '\\') != NULL)
        return NULL;
    /* No "." or ".." segment: nothing outside the set can be named anyway,
     * but such a path is never a file of ours. */
    for (const char *p = path; *p; p++) {
        if (p[0] == '/' && p[1] == '.' && (p[2] == '/' || p[2] == '\0' || (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))
            return NULL;
    }
    char full[2048];
    size_t n = strlen(path);
    if (n + 11 >= sizeof(full))
        return NULL;
    memcpy(full, path, n + 1);
    if (full[n - 1] == '/')
        memcpy(full + n, "index.html", 11);
    web_file_t key = { .path = full };
    return bsearch(&key, w->files, w->n, sizeof(*w->files), by_path);
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

const web_file_t *web_find_encoded(const web_t *w, const char *path, size_t len)
{
    char p[2048];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (k + 1 >= sizeof(p))
            return NULL;
        if (path[i] == '%') {
            int hi = i + 2 < len ? hexv(path[i + 1]) : -1, lo = i + 2 < len ? hexv(path[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            p[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            p[k++] = path[i];
        }
    }
    p[k] = '\0';
    return web_find(w, p);
}

void web_free(web_t *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->files[i].path);
        free(w->files[i].data);
    }
    free(w->files);
    free(w);
}
