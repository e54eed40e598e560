/* The growable byte buffer every writer appends to, and the rule for failing. */
#ifndef OTEL_EXPERIMENTS_BUFFER_H
#define OTEL_EXPERIMENTS_BUFFER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

int buf_grow(Buf *b, Py_ssize_t need);

static inline int grow(Buf *b, Py_ssize_t need)
{
    return b->len + need <= b->cap ? 0 : buf_grow(b, need);
}

static inline int put(Buf *b, const char *s, Py_ssize_t n)
{
    if (grow(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

#define PUT(b, lit) put((b), (lit), (Py_ssize_t)sizeof(lit) - 1)

/* A declined span: no exception set, the caller hands the span to Python. Writers return
 * -1 both for that and for an error; the span encoder clears either and declines. */
static inline int decline(void) { return -1; }

#endif
