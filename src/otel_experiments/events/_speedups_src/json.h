/* JSON values written as orjson (UTF-8 mode) or the stdlib's json (ASCII mode) writes
 * them, and JSON text compacted the way orjson re-encodes it. */
#ifndef OTEL_EXPERIMENTS_JSON_H
#define OTEL_EXPERIMENTS_JSON_H

#include "buffer.h"

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define HAS_ZERO(x) (((x) - ONES) & ~(x) & HIGHS)

/* Whether any of eight bytes is a control character, '"' or '\\' (or DEL in ASCII mode);
 * bytes of multi-byte UTF-8 sequences (high bit set) never match. */
static inline uint64_t needs_escape(uint64_t v, int ascii)
{
    uint64_t m = ((v - ONES * 0x20) & ~v & HIGHS) | HAS_ZERO(v ^ (ONES * '"'))
                 | HAS_ZERO(v ^ (ONES * '\\'));
    if (ascii)
        m |= HAS_ZERO(v ^ (ONES * 0x7f));
    return m;
}

int put_chars(Buf *b, PyObject *s, int ascii);
int put_str(Buf *b, PyObject *s, int ascii);
int put_i64(Buf *b, long long v);
int put_int(Buf *b, PyObject *v);
int put_float(Buf *b, PyObject *v, int ascii);
int hex_id(PyObject *v, char *out, int words);
int put_compact(Buf *b, const char *text, Py_ssize_t n);

#endif
