/*
 * log.h: one line per event on stderr: "ts=... level=info event=name k=v ...".
 */
#ifndef SENTRA_LOG_H
#define SENTRA_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

extern int log_min_level;

/* Sets the minimum level from "debug", "info", "warn" or "error"; returns 0,
 * or -1 for an unknown name. */
int log_set_level(const char *name);

/* Logs event with optional key=value text (printf-style; may be NULL).
 * Values that may hold spaces should be quoted by the caller with %s in
 * quotes; log_quote() helps. */
void log_event(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(ev, ...) do { if (log_min_level <= LOG_DEBUG) log_event(LOG_DEBUG, ev, __VA_ARGS__); } while (0)
#define log_info(ev, ...) log_event(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, ev, __VA_ARGS__)

#endif
