/*
 * status.c: names of gRPC status codes.
 */
#include <string.h>

#include "status.h"

static const char *const names[17] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
};

const char *sentra_status_name(int code)
{
    return code >= 0 && code < 17 ? names[code] : "UNKNOWN_CODE";
}

int sentra_status_from_name(const char *name)
{
    for (int i = 0; i < 17; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}
