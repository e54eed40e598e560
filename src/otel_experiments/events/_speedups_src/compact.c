#include "json.h"

/* JSON text re-written compactly, as orjson.dumps(orjson.loads(text)) writes it, for the
 * plain subset where that is only dropping whitespace: strings whose escapes are already
 * orjson's, integers within 18 digits, no duplicate keys, nesting below 64. Anything
 * else (a float, an escaped non-ASCII character, invalid text, ...) returns 1 and the
 * caller decodes and encodes through orjson. */
typedef struct {
    const char *p, *end;
    Buf *b;
    int depth;
} Compact;

static inline void skip_ws(Compact *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int compact_value(Compact *c);

static int compact_string(Compact *c)
{
    const char *start = c->p++; /* the opening quote */
    while (c->p < c->end) {
        c->p += skip_plain(c->p, 0, c->end - c->p, 0);
        if (c->p >= c->end)
            break;
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            return put(c->b, start, c->p - start) < 0 ? -1 : 0;
        }
        if (ch < 0x20)
            return 1; /* invalid JSON: orjson decides */
        if (ch == '\\') {
            if (c->p + 1 >= c->end)
                return 1;
            char e = c->p[1];
            if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                c->p += 2;
                continue;
            }
            /* \u00XX is orjson's form only for a control character without a short escape */
            if (e == 'u' && c->end - c->p >= 6 && c->p[2] == '0' && c->p[3] == '0'
                && (c->p[4] == '0' || c->p[4] == '1')) {
                char lo = c->p[5];
                int v = (c->p[4] - '0') * 16
                        + (lo >= '0' && lo <= '9' ? lo - '0' : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -100);
                if (v >= 0 && v != '\b' && v != '\f' && v != '\n' && v != '\r' && v != '\t') {
                    c->p += 6;
                    continue;
                }
            }
            return 1;
        }
        c->p++;
    }
    return 1;
}

static int compact_number(Compact *c)
{
    const char *start = c->p;
    if (*c->p == '-')
        c->p++;
    const char *digits = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    Py_ssize_t n = c->p - digits;
    if (n == 0 || n > 18 || (digits[0] == '0' && (n > 1 || start != digits)))
        return 1; /* no digits, too long, a leading zero, or -0 (read back as 0) */
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
        return 1; /* a float: orjson's own formatting */
    return put(c->b, start, c->p - start) < 0 ? -1 : 0;
}

static int compact_literal(Compact *c, const char *word, Py_ssize_t n)
{
    if (c->end - c->p < n || memcmp(c->p, word, n) != 0)
        return 1;
    c->p += n;
    return put(c->b, word, n) < 0 ? -1 : 0;
}

#define MAX_KEYS 32

static int compact_container(Compact *c, char close)
{
    const char *keys[MAX_KEYS];
    Py_ssize_t key_lens[MAX_KEYS];
    int nkeys = 0, rc;
    if (++c->depth > 64)
        return 1;
    if (put(c->b, c->p, 1) < 0)
        return -1;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        c->depth--;
        return put(c->b, &close, 1) < 0 ? -1 : 0;
    }
    for (;;) {
        if (close == '}') {
            skip_ws(c);
            if (c->p >= c->end || *c->p != '"')
                return 1;
            const char *key = c->p;
            if ((rc = compact_string(c)) != 0)
                return rc;
            Py_ssize_t len = c->p - key;
            for (int i = 0; i < nkeys; i++) /* a repeated key: orjson keeps the last value */
                if (key_lens[i] == len && memcmp(keys[i], key, len) == 0)
                    return 1;
            if (nkeys == MAX_KEYS)
                return 1;
            keys[nkeys] = key;
            key_lens[nkeys++] = len;
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return 1;
            c->p++;
            if (PUT(c->b, ":") < 0)
                return -1;
        }
        if ((rc = compact_value(c)) != 0)
            return rc;
        skip_ws(c);
        if (c->p >= c->end)
            return 1;
        if (*c->p == close) {
            c->p++;
            c->depth--;
            return put(c->b, &close, 1) < 0 ? -1 : 0;
        }
        if (*c->p != ',')
            return 1;
        c->p++;
        if (PUT(c->b, ",") < 0)
            return -1;
    }
}

static int compact_value(Compact *c)
{
    skip_ws(c);
    if (c->p >= c->end)
        return 1;
    switch (*c->p) {
    case '{': return compact_container(c, '}');
    case '[': return compact_container(c, ']');
    case '"': return compact_string(c);
    case 't': return compact_literal(c, "true", 4);
    case 'f': return compact_literal(c, "false", 5);
    case 'n': return compact_literal(c, "null", 4);
    default: return compact_number(c);
    }
}

/* 0: written; 1: not the plain subset (nothing written); -1: error. */
int put_compact(Buf *b, const char *text, Py_ssize_t n)
{
    Py_ssize_t mark = b->len;
    Compact c = {text, text + n, b, 0};
    int rc = compact_value(&c);
    if (rc == 0) {
        skip_ws(&c);
        if (c.p != c.end)
            rc = 1;
    }
    if (rc != 0)
        b->len = mark;
    return rc;
}
