/*
 * utf8.c: one UTF-8 decoder for the server (see utf8.h), strict as RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF.
 */
#include "utf8.h"

int32_t sentra__utf8_next(const char **sp, const char *endp)
{
    const unsigned char *s = (const unsigned char *)*sp, *end = (const unsigned char *)endp;
    unsigned c = *s;
    size_t k;
    uint32_t cp;

    if (c < 0x80) {
        *sp += 1;
        return (int32_t)c;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        k = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 3;
        cp = c & 0x07;
    } else {
        *sp += 1;                       /* continuation byte, C0/C1, F5.. */
        return -1;
    }
    if ((size_t)(end - s) <= k) {
        *sp += 1;                       /* truncated sequence */
        return -1;
    }
    for (size_t i = 1; i <= k; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *sp += 1;
            return -1;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        *sp += 1;                       /* overlong, too large, surrogate */
        return -1;
    }
    *sp += k + 1;
    return (int32_t)cp;
}

int sentra__utf8_valid(const char *s, size_t len, size_t *chars)
{
    const char *end = s + len;
    size_t n = 0;

    while (s < end) {
        if (sentra__utf8_next(&s, end) < 0)
            return 0;
        n++;
    }
    if (chars)
        *chars = n;
    return 1;
}

size_t sentra__utf8_clip(const char *s, size_t max)
{
    size_t len = 0;

    while (len < max && s[len])
        len++;
    if (s[len] == '\0')
        return len;                     /* all of it fits */
    /* Back over continuation bytes to the start of the character that the
     * limit cuts, and drop that character. */
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
        len--;
    return len;
}

size_t sentra__utf8_scrub(char *s)
{
    const char *p = s, *end = s;
    size_t bad = 0;

    while (*end)
        end++;
    while (p < end) {
        const char *start = p;
        if (sentra__utf8_next(&p, end) < 0) {
            *(char *)start = '?';       /* next() moved one byte */
            bad++;
        }
    }
    return bad;
}

int sentra__printable_ascii(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < ' ' || *s > '~')
            return 0;
    return 1;
}
