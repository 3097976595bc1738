/*
 * sentra_example.c: a small program using the installed libsentra.
 *
 *   cc -o sentra_example sentra_example.c $(pkg-config --cflags --libs sentra)
 *   SENTRA_ADDR=127.0.0.1:7600 SENTRA_TOKEN=... ./sentra_example
 *
 * It checks the server's health, pings it a few times on the caller's own
 * libuv loop with every ping in flight at once, and lists the first page of
 * sentra the token may read, showing the ownership rules of the API: the
 * caller frees responses with protobuf_c_message_free_unpacked and clears
 * statuses with sentra_status_clear.
 */
#include <stdio.h>
#include <stdlib.h>

#include <sentra/async.h>
#include <sentra/sentra.h>

static int pings_done;

static void on_ping(sentra_async_call_t *call, int rc, ProtobufCMessage *resp, const sentra_status_t *st,
                    void *arg)
{
    (void)call;
    pings_done++;
    if (rc)
        fprintf(stderr, "ping %ld: %s: %s\n", (long)(intptr_t)arg, sentra_status_name(st->code),
                st->message ? st->message : "");
    else
        protobuf_c_message_free_unpacked(resp, NULL); /* the callback owns it */
}

int main(void)
{
    sentra_client_t *c;
    int rc = sentra_client_new(&c, NULL); /* address and token from the environment */
    if (rc) {
        fprintf(stderr, "sentra_client_new: %s\n", sentra_strerror(rc));
        return 1;
    }
    sentra_status_t st;
    sentra_status_init(&st);

    /* 1. Blocking: health. */
    Sentra__V1__HealthCheckRequest hreq = SENTRA__V1__HEALTH_CHECK_REQUEST__INIT;
    Sentra__V1__HealthCheckResponse *h = NULL;
    rc = sentra_health_check(c, &hreq, &h, NULL, &st);
    if (rc) {
        fprintf(stderr, "health: %s (%s): %s\n", sentra_status_name(st.code), sentra_err_name(rc),
                st.message ? st.message : "");
        sentra_status_clear(&st);
        sentra_client_free(c);
        return 1;
    }
    printf("server %s at %s: %s\n", h->version, sentra_client_address(c),
           h->status == SENTRA__V1__SERVING_STATUS__SERVING_STATUS_SERVING ? "serving" : "not serving");
    sentra__v1__health_check_response__free_unpacked(h, NULL);

    /* 2. Asynchronous: ten pings in flight on one connection. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    sentra_async_t *a = sentra_async_new(&loop, NULL);
    for (long i = 0; a && i < 10; i++) {
        Sentra__V1__PingRequest p = SENTRA__V1__PING_REQUEST__INIT;
        sentra_async_call(a, SENTRA_M_PING, &p.base, &sentra__v1__ping_response__descriptor, NULL, on_ping,
                          (void *)(intptr_t)i);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* returns when every call completed */
    printf("%d pings answered\n", pings_done);
    if (a)
        sentra_async_close(a, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    /* 3. Blocking: the first page of sentra. */
    Sentra__V1__ListSentraRequest lreq = SENTRA__V1__LIST_SENTRA_REQUEST__INIT;
    lreq.page_size = 10;
    Sentra__V1__ListSentraResponse *list = NULL;
    rc = sentra_list_sentra(c, &lreq, &list, NULL, &st);
    if (rc == 0) {
        for (size_t i = 0; i < list->n_sentra; i++)
            printf("%s  %-40s %s\n", list->sentra[i]->id, list->sentra[i]->name, list->sentra[i]->regency_code);
        printf("%zu sentra on the first page\n", list->n_sentra);
        sentra__v1__list_sentra_response__free_unpacked(list, NULL);
    } else {
        /* e.g. UNAUTHENTICATED without a token */
        printf("list: %s: %s\n", sentra_status_name(st.code), st.message ? st.message : "");
    }
    sentra_status_clear(&st);
    sentra_client_free(c);
    return 0;
}
