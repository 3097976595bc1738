/*
 * status.h: gRPC status codes (the same numbers as sentra.v1.Code) and
 * their names, shared by server and client.
 */
#ifndef SENTRA_STATUS_H
#define SENTRA_STATUS_H

/* Name ("NOT_FOUND") of a status code; "UNKNOWN_CODE" when out of range. */
const char *sentra_status_name(int code);

/* Parses a name back to its code; -1 when unknown. */
int sentra_status_from_name(const char *name);



/* The codes, short names for sentra.v1.Code. */
enum sentra_code {
    SENTRA_OK = 0,
    SENTRA_CANCELLED = 1,
    SENTRA_UNKNOWN = 2,
    SENTRA_INVALID_ARGUMENT = 3,
    SENTRA_DEADLINE_EXCEEDED = 4,
    SENTRA_NOT_FOUND = 5,
    SENTRA_ALREADY_EXISTS = 6,
    SENTRA_PERMISSION_DENIED = 7,
    SENTRA_RESOURCE_EXHAUSTED = 8,
    SENTRA_FAILED_PRECONDITION = 9,
    SENTRA_ABORTED = 10,
    SENTRA_OUT_OF_RANGE = 11,
    SENTRA_UNIMPLEMENTED = 12,
    SENTRA_INTERNAL = 13,
    SENTRA_UNAVAILABLE = 14,
    SENTRA_DATA_LOSS = 15,
    SENTRA_UNAUTHENTICATED = 16
};
#endif
