/*
 * utf8.h: the UTF-8 a server may read and must write.
 *
 * Protobuf strings must hold valid UTF-8: strict decoders (Python's, C++'s)
 * refuse a whole message over one bad byte. Everything the server writes
 * into a text field of an answer (Response.message, violations) therefore
 * passes through here: cut on a character boundary, never in the middle of
 * one, and never an echo of bytes that are not UTF-8. The same decoder
 * checks what clients send (validate.c). Pure functions, no allocation.
 */
#ifndef SENTRA_UTF8_H
#define SENTRA_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the character at *s (s < end) and moves *s past it. Returns the
 * code point, or -1 when the bytes there are not valid UTF-8 (an overlong
 * form, a surrogate, above U+10FFFF, a stray continuation byte, a
 * truncated sequence); *s then moves past one byte. */
int32_t sentra__utf8_next(const char **s, const char *end);

/* 1 when the len bytes at s are valid UTF-8; *chars (may be NULL) gets the
 * number of code points. */
int sentra__utf8_valid(const char *s, size_t len, size_t *chars);

/* The length of the longest prefix of s (NUL-terminated) that has at most
 * max bytes and does not end inside a character. */
size_t sentra__utf8_clip(const char *s, size_t max);

/* Makes s (NUL-terminated) valid UTF-8 in place: every byte that does not
 * belong to a valid character becomes '?'. Returns the number replaced. */
size_t sentra__utf8_scrub(char *s);

/* 1 when s is non-empty and every byte is printable ASCII (' '..'~'): safe
 * to quote back to the client that sent it (method names, field paths). */
int sentra__printable_ascii(const char *s);

#endif
