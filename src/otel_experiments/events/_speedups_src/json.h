/* JSON values written as orjson (UTF-8 mode) or the stdlib's json (ASCII mode) writes
 * them, and JSON text compacted the way orjson re-encodes it. */
#ifndef OTEL_EXPERIMENTS_JSON_H
#define OTEL_EXPERIMENTS_JSON_H

#include "buffer.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* The index of the first byte from i on that may need escaping, or where fewer than
 * eight bytes are left: sixteen bytes at a time with SSE2 (every x86-64 has it), then
 * eight. The index is exact where the compiler can count trailing zeros, else the start
 * of the word holding that byte (the caller reads on byte by byte either way). */
static inline Py_ssize_t skip_plain(const char *u, Py_ssize_t i, Py_ssize_t n, int ascii)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  control = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(u + i));
        /* min(v, 0x1f) == v: an unsigned byte below 0x20 */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                 _mm_cmpeq_epi8(_mm_min_epu8(v, control), v));
        if (ascii)
            m = _mm_or_si128(m, _mm_cmpeq_epi8(v, del));
        int bits = _mm_movemask_epi8(m);
        if (bits != 0) {
#if defined(__GNUC__)
            return i + __builtin_ctz((unsigned)bits);
#else
            return i;
#endif
        }
        i += 16;
    }
#endif
    while (i + 8 <= n) {
        uint64_t v;
        memcpy(&v, u + i, 8);
        if (needs_escape(v, ascii))
            return i;
        i += 8;
    }
    return i;
}

int put_chars(Buf *b, PyObject *s, int ascii);
int put_str(Buf *b, PyObject *s, int ascii);
int put_i64(Buf *b, long long v);
int put_int(Buf *b, PyObject *v);
int put_float(Buf *b, PyObject *v, int ascii);
int hex_id(PyObject *v, char *out, int words);
int put_compact(Buf *b, const char *text, Py_ssize_t n);

#endif
