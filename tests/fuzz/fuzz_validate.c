/*
 * fuzz_validate.c: libFuzzer target for the validation of every request
 * message.
 *
 * The first input byte picks a request message type (the list below, in
 * the order of the .proto files; seeds depend on it, so only add at
 * the end); the rest is unpacked as that message, then handed to the checks its handler runs before touching the
 * database (server/services/validate.c, server/services/filter.c): record rules for creates,
 * updates and pushed mutations, update masks, filters, ids, region codes,
 * dates and UTF-8. The filter's SQL text is built for the shape the input
 * implies, into buffers of every small size, to check its truncation.
 *
 * Beyond "no crash, no undefined behaviour, no leak", the checks must be
 * consistent: a validator's return value equals the violations it
 * reported, and each reported field and reason is a non-empty string.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "filter.h"
#include "grpc/health/v1/health.pb-c.h"
#include "methods.h"
#include "validate.h"
#include "sentra/v1/sentra.pb-c.h"

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz_validate: %s:%d: check failed: %s\n",      \
                    __FILE__, __LINE__, #cond);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)

static int reported;

static void on_violation(void *arg, const char *field, const char *reason)
{
    CHECK(field != NULL && field[0] != '\0');
    CHECK(reason != NULL && reason[0] != '\0');
    /* Copy them, as the contract says the caller must. */
    violations_add((violations_t *)arg, field, "%s", reason);
    reported++;
}

static void check_string(const char *s)
{
    int ymd = 0;
    size_t chars = 0;
    if (s == NULL)
        return;
    (void)validate_uuid(s);
    if (validate_date(s, &ymd))
        CHECK(ymd >= 10101 && ymd <= 99991231); /* 0001-01-01 .. 9999-12-31 */
    if (validate_utf8(s, strlen(s), &chars))
        CHECK(chars <= strlen(s));
    int level = validate_region_code(s);
    CHECK(level >= 0 && level <= 4);
}

static void check_filter(const Sentra__V1__SentraFilter *f)
{
    violations_t v = { 0 };
    int n = sentra__filter_check(f, &v);
    CHECK(n >= 0 && (size_t)n == v.n + v.more);   /* more: past CALL_MAX_VIOLATIONS */
    violations_free(&v);
    if (f != NULL) {
        check_string(f->province_code);
        check_string(f->regency_code);
        check_string(f->kbli_prefix);
        check_string(f->text);
    }
}

/* The SQL of a filter shape, into buffers of several sizes: the returned
 * length never changes, and the text is always NUL-terminated inside. */
static void check_filter_sql(unsigned shape)
{
    char big[8192];
    size_t need = sentra__filter_sql(shape, "s", 1, big, sizeof(big));
    CHECK(need < sizeof(big));
    CHECK(strlen(big) == need);
    for (size_t len = 1; len < 64 && len <= need + 1; len += 7) {
        char *small = malloc(len);
        CHECK(small != NULL);
        CHECK(sentra__filter_sql(shape, "s", 1, small, len) == need);
        CHECK(strlen(small) < len);
        CHECK(memcmp(small, big, strlen(small)) == 0);
        free(small);
    }
}

static void check_sentra(const Sentra__V1__Sentra *s, unsigned fields, int is_update)
{
    violations_t v = { 0 };
    validate_ctx_t vc = { .today = validate_today(), .report = on_violation, .arg = &v };
    reported = 0;
    int n = validate_sentra(&vc, s, fields, is_update);
    CHECK(n == reported && n == vc.count && (size_t)n == v.n);
    violations_free(&v);
    /* Without a report function it only counts. */
    validate_ctx_t quiet = { .today = vc.today };
    CHECK(validate_sentra(&quiet, s, fields, is_update) == n);
    check_string(s->id);
    check_string(s->formed_on);
    check_string(s->regency_code);
    if (s->decree)
        check_string(s->decree->date);
}

static void check_mask(char **paths, size_t n, const Sentra__V1__Sentra *s)
{
    violations_t v = { 0 };
    validate_ctx_t vc = { .today = validate_today(), .report = on_violation, .arg = &v };
    reported = 0;
    unsigned fields = validate_mask(&vc, (const char *const *)paths, n);
    CHECK((fields & ~(unsigned)VF_ALL) == 0);
    CHECK(vc.count == reported && (size_t)vc.count == v.n);
    CHECK(vc.count == 0 || fields == 0);
    violations_free(&v);
    for (int i = 0; i < VF_COUNT; i++)
        CHECK(validate_field_name(i) != NULL);
    if (s != NULL && fields != 0)
        check_sentra(s, fields, 1);
}

/* Every request message of the services. Append only. */
static const ProtobufCMessageDescriptor *const request_types[] = {
    &sentra__v1__health_check_request__descriptor,
    &sentra__v1__ping_request__descriptor,
    &sentra__v1__get_descriptor_set_request__descriptor,
    &sentra__v1__sleep_request__descriptor,
    &sentra__v1__create_sentra_request__descriptor,
    &sentra__v1__get_sentra_request__descriptor,
    &sentra__v1__update_sentra_request__descriptor,
    &sentra__v1__delete_sentra_request__descriptor,
    &sentra__v1__list_sentra_request__descriptor,
    &sentra__v1__get_region_request__descriptor,
    &sentra__v1__list_regions_request__descriptor,
    &sentra__v1__get_statistics_request__descriptor,
    &sentra__v1__get_time_series_request__descriptor,
    &sentra__v1__pull_changes_request__descriptor,
    &sentra__v1__push_changes_request__descriptor,
    &sentra__v1__create_token_request__descriptor,
    &sentra__v1__list_tokens_request__descriptor,
    &sentra__v1__revoke_token_request__descriptor,
    &grpc__health__v1__health_check_request__descriptor,   /* grpc.health.v1.Health */
};
#define NTYPES (sizeof(request_types) / sizeof(request_types[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int table_checked;
    if (!table_checked) {
        /* Every method's input type is in the list above. */
        for (const method_t *m = methods; m->name != NULL; m++) {
            size_t i = 0;
            while (i < NTYPES && request_types[i] != m->input)
                i++;
            if (i == NTYPES)
                fprintf(stderr, "fuzz_validate: %s's request type is missing from request_types\n",
                        m->name);
        }
        table_checked = 1;
    }
    if (size < 1)
        return 0;
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(request_types[data[0] % NTYPES], NULL, size - 1, data + 1);
    if (msg == NULL)
        return 0;
    const ProtobufCMessageDescriptor *d = msg->descriptor;

    if (d == &sentra__v1__create_sentra_request__descriptor) {
        const Sentra__V1__CreateSentraRequest *r = (const void *)msg;
        if (r->sentra)
            check_sentra(r->sentra, VF_ALL, 0);
    } else if (d == &sentra__v1__update_sentra_request__descriptor) {
        const Sentra__V1__UpdateSentraRequest *r = (const void *)msg;
        check_mask(r->update_mask, r->n_update_mask, r->sentra);
    } else if (d == &sentra__v1__get_sentra_request__descriptor) {
        check_string(((const Sentra__V1__GetSentraRequest *)msg)->id);
    } else if (d == &sentra__v1__delete_sentra_request__descriptor) {
        check_string(((const Sentra__V1__DeleteSentraRequest *)msg)->id);
    } else if (d == &sentra__v1__list_sentra_request__descriptor) {
        check_filter(((const Sentra__V1__ListSentraRequest *)msg)->filter);
        check_string(((const Sentra__V1__ListSentraRequest *)msg)->page_token);
    } else if (d == &sentra__v1__get_statistics_request__descriptor) {
        check_filter(((const Sentra__V1__GetStatisticsRequest *)msg)->filter);
        check_string(((const Sentra__V1__GetStatisticsRequest *)msg)->as_of);
    } else if (d == &sentra__v1__get_time_series_request__descriptor) {
        check_filter(((const Sentra__V1__GetTimeSeriesRequest *)msg)->filter);
    } else if (d == &sentra__v1__pull_changes_request__descriptor) {
        check_filter(((const Sentra__V1__PullChangesRequest *)msg)->filter);
        check_string(((const Sentra__V1__PullChangesRequest *)msg)->cursor);
    } else if (d == &sentra__v1__push_changes_request__descriptor) {
        const Sentra__V1__PushChangesRequest *r = (const void *)msg;
        check_string(r->client_id);
        for (size_t i = 0; i < r->n_mutations && i < 1000; i++) {
            check_string(r->mutations[i]->mutation_id);
            if (r->mutations[i]->sentra)
                check_sentra(r->mutations[i]->sentra, VF_ALL,
                             r->mutations[i]->op == SENTRA__V1__MUTATION_OP__MUTATION_OP_DELETE);
        }
    } else if (d == &sentra__v1__get_region_request__descriptor) {
        check_string(((const Sentra__V1__GetRegionRequest *)msg)->code);
    } else if (d == &sentra__v1__list_regions_request__descriptor) {
        check_string(((const Sentra__V1__ListRegionsRequest *)msg)->parent_code);
        check_string(((const Sentra__V1__ListRegionsRequest *)msg)->page_token);
    } else if (d == &sentra__v1__create_token_request__descriptor) {
        check_string(((const Sentra__V1__CreateTokenRequest *)msg)->region_code);
        check_string(((const Sentra__V1__CreateTokenRequest *)msg)->label);
    } else if (d == &sentra__v1__revoke_token_request__descriptor) {
        check_string(((const Sentra__V1__RevokeTokenRequest *)msg)->id);
    }
    /* Every filter shape the input's bytes can name. */
    if (size >= 3)
        check_filter_sql(((unsigned)data[1] << 8 | data[2]) & ((1u << SF_BITS) - 1));
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
}
