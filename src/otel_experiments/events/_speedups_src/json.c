/* JSON values: strings escaped as each encoder escapes them, integers, floats as repr()
 * writes them, fixed-width hex ids. */
#include <math.h>

#include "json.h"

static const char HEX[] = "0123456789abcdef";

int buf_grow(Buf *b, Py_ssize_t need)
{
    Py_ssize_t cap = b->cap ? b->cap : 8192;
    while (cap < b->len + need)
        cap *= 2;
    char *p = PyMem_Realloc(b->p, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static int put_escape(Buf *b, Py_UCS4 c)
{
    char e[12];
    int n;
    switch (c) {
    case '"': n = 2; memcpy(e, "\\\"", 2); break;
    case '\\': n = 2; memcpy(e, "\\\\", 2); break;
    case '\n': n = 2; memcpy(e, "\\n", 2); break;
    case '\r': n = 2; memcpy(e, "\\r", 2); break;
    case '\t': n = 2; memcpy(e, "\\t", 2); break;
    case '\b': n = 2; memcpy(e, "\\b", 2); break;
    case '\f': n = 2; memcpy(e, "\\f", 2); break;
    default:
        if (c >= 0x10000) { /* a surrogate pair, as the stdlib's ensure_ascii writes it */
            Py_UCS4 v = c - 0x10000;
            Py_UCS4 hi = 0xd800 | (v >> 10), lo = 0xdc00 | (v & 0x3ff);
            e[0] = '\\'; e[1] = 'u';
            e[2] = HEX[hi >> 12]; e[3] = HEX[(hi >> 8) & 15]; e[4] = HEX[(hi >> 4) & 15]; e[5] = HEX[hi & 15];
            e[6] = '\\'; e[7] = 'u';
            e[8] = HEX[lo >> 12]; e[9] = HEX[(lo >> 8) & 15]; e[10] = HEX[(lo >> 4) & 15]; e[11] = HEX[lo & 15];
            n = 12;
        } else {
            e[0] = '\\'; e[1] = 'u';
            e[2] = HEX[c >> 12]; e[3] = HEX[(c >> 8) & 15]; e[4] = HEX[(c >> 4) & 15]; e[5] = HEX[c & 15];
            n = 6;
        }
    }
    return put(b, e, n);
}

/* A str's characters, escaped, without quotes. UTF-8 mode writes what orjson writes (raw
 * UTF-8; a lone surrogate is declined, as orjson refuses it); ASCII mode what the stdlib's
 * json writes (everything outside space..'~' escaped). */
int put_chars(Buf *b, PyObject *s, int ascii)
{
    if (!PyUnicode_CheckExact(s))
        return decline();
    if (!ascii || PyUnicode_IS_ASCII(s)) {
        Py_ssize_t n;
        const char *u;
        if (PyUnicode_IS_COMPACT_ASCII(s)) { /* its characters are its UTF-8 */
            u = (const char *)PyUnicode_DATA(s);
            n = PyUnicode_GET_LENGTH(s);
        } else if ((u = PyUnicode_AsUTF8AndSize(s, &n)) == NULL) {
            PyErr_Clear();
            return decline();
        }
        if (grow(b, n) < 0)
            return -1;
        Py_ssize_t start = 0, i = 0;
        int tail_checked = 0;
        while (i < n) {
            i = skip_plain(u, i, n, ascii);
            if (i + 8 > n && !tail_checked) {
                /* the last bytes in one word too: the last eight (overlapping bytes
                 * already read), or the few there are, padded with spaces */
                uint64_t v;
                tail_checked = 1;
                if (n >= 8) {
                    memcpy(&v, u + n - 8, 8);
                } else {
                    v = ONES * ' ';
                    memcpy(&v, u + i, (size_t)(n - i));
                }
                if (!needs_escape(v, ascii))
                    break;
            }
            if (i >= n)
                break;
            unsigned char c = (unsigned char)u[i++];
            if (c >= 0x20 && c != '"' && c != '\\' && !(ascii && c == 0x7f))
                continue;
            if (put(b, u + start, i - 1 - start) < 0 || put_escape(b, c) < 0)
                return -1;
            start = i;
        }
        return put(b, u + start, n - start);
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (grow(b, n) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            char ch = (char)c;
            if (put(b, &ch, 1) < 0)
                return -1;
        } else if (put_escape(b, c) < 0) {
            return -1;
        }
    }
    return 0;
}

int put_str(Buf *b, PyObject *s, int ascii)
{
    if (PUT(b, "\"") < 0 || put_chars(b, s, ascii) < 0)
        return -1;
    return PUT(b, "\"");
}

/* "00" to "99": two digits per division */
static const char DIGIT_PAIRS[] =
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849"
    "5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

int put_i64(Buf *b, long long v)
{
    char tmp[24];
    char *end = tmp + sizeof tmp, *p = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        unsigned pair = (unsigned)(u % 100);
        u /= 100;
        p -= 2;
        memcpy(p, DIGIT_PAIRS + 2 * pair, 2);
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, DIGIT_PAIRS + 2 * u, 2);
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0)
        *--p = '-';
    return put(b, p, end - p);
}

/* An exact int, as both encoders write it; beyond 64 bits declined (orjson refuses it,
 * the stdlib path keeps its own rules). */
int put_int(Buf *b, PyObject *v)
{
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return decline();
    }
    if (overflow)
        return decline();
    return put_i64(b, x);
}

/* Exact powers of ten: a double holds each of them without rounding. */
static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};

/* repr() of a float with at most 6 decimals, between 1e-4 and 1e9 in magnitude (where
 * repr() writes no exponent), without the shortest-digits search: 0 when written, 1 when
 * x is not such a float. m / 10**p, both exact doubles, is the correctly rounded value of
 * that decimal (one IEEE division), so equality means the decimal reads back as x; the
 * smallest such p gives repr()'s digits, as two decimals of at most 15 significant
 * digits are further apart than one double's rounding interval. */
static int put_short_float(Buf *b, double x)
{
    double a = fabs(x);
    if (!(a >= 1e-4 && a < 1e9))
        return 1;
    for (int p = 0; p <= 6; p++) {
        double scaled = a * POW10[p];
        double m = nearbyint(scaled);
        if (m / POW10[p] != a)
            continue;
        long long unit = (long long)POW10[p], digits = (long long)m;
        /* the decimals, zero-padded to p digits ("0" for none: repr()'s ".0") */
        char decimals[6];
        int width = p ? p : 1;
        long long rest = digits % unit;
        for (int i = width - 1; i >= 0; i--) {
            decimals[i] = (char)('0' + rest % 10);
            rest /= 10;
        }
        if ((x < 0 && PUT(b, "-") < 0) || put_i64(b, digits / unit) < 0 || PUT(b, ".") < 0
            || put(b, decimals, width) < 0)
            return -1;
        return 0;
    }
    return 1;
}

/* A finite float as repr() writes it; orjson writes exponents differently, so those are
 * declined in UTF-8 mode. */
int put_float(Buf *b, PyObject *v, int ascii)
{
    double x = PyFloat_AS_DOUBLE(v);
    if (!isfinite(x))
        return decline();
    int fast = put_short_float(b, x);
    if (fast <= 0)
        return fast;
    char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL)
        return -1;
    int ok = ascii || strchr(text, 'e') == NULL;
    int rc = ok ? put(b, text, (Py_ssize_t)strlen(text)) : decline();
    PyMem_Free(text);
    return rc;
}

static void put_hex(char *out, unsigned long long v, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = HEX[v & 15];
        v >>= 4;
    }
}

/* An exact non-negative int below 2**(64*words), as fixed-width lowercase hex. */
int hex_id(PyObject *v, char *out, int words)
{
    if (!PyLong_CheckExact(v))
        return decline();
    unsigned long long low, high = 0;
    if (words == 2) {
        PyObject *shift = PyLong_FromLong(64), *top;
        if (shift == NULL)
            return -1;
        top = PyNumber_Rshift(v, shift);
        Py_DECREF(shift);
        if (top == NULL)
            return -1;
        high = PyLong_AsUnsignedLongLong(top);
        Py_DECREF(top);
        if (high == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return decline();
        }
        low = PyLong_AsUnsignedLongLongMask(v);
        if (low == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return decline();
        }
        put_hex(out, high, 16);
        put_hex(out + 16, low, 16);
        return 0;
    }
    low = PyLong_AsUnsignedLongLong(v);
    if (low == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return decline();
    }
    put_hex(out, low, 16);
    return 0;
}
