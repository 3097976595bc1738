/*
 * test_methods.c: the dispatch table (server/core/methods.c) agrees with
 * the .proto files: every rpc is served, and a method takes Connect GETs
 * (METHOD_NO_SIDE_EFFECTS) exactly when its rpc says
 * `option idempotency_level = NO_SIDE_EFFECTS;`, which is what stock
 * Connect clients read. ETags only on side-effect-free methods.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "methods.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot read %s (run from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return s;
}

/* Checks every rpc of one .proto file against the table; returns how many. */
static int check_file(const char *path)
{
    char *text = slurp(path);
    char service[128] = "";
    int n = 0;
    for (char *p = text; *p; p++) {
        if (strncmp(p, "service ", 8) == 0 && (p == text || p[-1] == '\n')) {
            sscanf(p + 8, "%127[A-Za-z0-9_]", service);
            continue;
        }
        if (strncmp(p, "  rpc ", 6) != 0 || p[-1] != '\n')
            continue;
        char name[128];
        assert_int_equal(sscanf(p + 6, "%127[A-Za-z0-9_]", name), 1);
        char *ret = strstr(p, "returns");
        assert_non_null(ret);
        char *close = strchr(ret, ')');
        assert_non_null(close);
        char *q = close + 1;
        while (*q == ' ')
            q++;
        int no_side_effects = 0;
        if (*q == '{') {
            char *end = strchr(q, '}');
            assert_non_null(end);
            *end = '\0';
            no_side_effects = strstr(q, "idempotency_level = NO_SIDE_EFFECTS") != NULL;
            *end = '}';
        } else {
            assert_int_equal(*q, ';');
        }
        char full[300];
        snprintf(full, sizeof(full), "/sentra.v1.%s/%s", service, name);
        const method_t *m = method_find(full);
        if (m == NULL)
            fail_msg("%s is in %s but not in methods.c", full, path);
        if (!!(m->flags & METHOD_NO_SIDE_EFFECTS) != no_side_effects)
            fail_msg("%s: NO_SIDE_EFFECTS is %s in %s but METHOD_NO_SIDE_EFFECTS is %s in methods.c", full,
                     no_side_effects ? "set" : "not set", path,
                     (m->flags & METHOD_NO_SIDE_EFFECTS) ? "set" : "not set");
        n++;
    }
    free(text);
    return n;
}

static void test_table_matches_protos(void **state)
{
    (void)state;
    int n = check_file("proto/sentra/v1/sentra.proto") + check_file("proto/sentra/v1/system.proto");
    int in_table = 0;
    for (const method_t *m = methods; m->name != NULL; m++) {
        /* Standard services served beside ours (grpc.health.v1) come with
         * their own .proto files. */
        if (strncmp(m->name, "/sentra.v1.", 11) == 0)
            in_table++;
        if ((m->flags & METHOD_ETAG) && !(m->flags & METHOD_NO_SIDE_EFFECTS))
            fail_msg("%s has an ETag but side effects", m->name);
        if ((m->flags & METHOD_NO_SIDE_EFFECTS) && (m->flags & METHOD_WRITE))
            fail_msg("%s writes but says it has no side effects", m->name);
    }
    assert_int_equal(n, in_table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_protos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
