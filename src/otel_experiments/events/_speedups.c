/* The converter's common case in C: a finished SDK span straight to its event's JSON bytes.
 *
 * Writes exactly the bytes `dumps(span_to_event(span)[1])` gives (and each metric's), for
 * the spans it knows: string attributes, ints within 64 bits, finite floats, status not
 * ERROR, metric events as `record_metric` writes them. Everything else is declined (None)
 * and the Python converter (events/convert.py), which holds the rules, does the span:
 * this file only restates the common case, and the tests compare both on random spans.
 * Values the rules hand to Python helpers (JSON payloads, metadata, kept attributes, the
 * resource tags, a new attribute-key shape) are computed by those helpers, called from here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

/* Configured once from Python (configure()): attribute keys, helpers, constants. */
enum {
    K_EXPERIMENT_ID, K_INPUT_VALUE, K_INPUT_MIME, K_OUTPUT_VALUE, K_OUTPUT_MIME,
    K_EXPECTED_VALUE, K_EXPECTED_MIME, K_METADATA, K_RECORD_ID, K_MIME_JSON,
    K_METRIC_EVENT, K_METRIC_LABEL, K_METRIC_TYPE, K_METRIC_VALUE, K_METRIC_TS,
    K_METRIC_METADATA, K_ERROR, K_LOADS, K_DUMPS, K_AS_OBJECT, K_KEPT_ATTRIBUTES,
    K_BASE_TAGS, K_EXPERIMENT_ID_OF,
    /* the SDK's private field names (otel_experiments._compat.NATIVE_FIELD_NAMES) */
    N_NAME, N_CONTEXT, N_PARENT, N_START, N_END, N_STATUS, N_KIND, N_RESOURCE,
    N_ATTRIBUTES, N_EVENTS, N_INNER, N_DQ, N_STATUS_CODE, N_TIMESTAMP, K_COUNT
};
static PyObject *cfg[K_COUNT];

static PyObject *s_dict, *s_shapes, *s_shape, *s_score, *s_boolean, *s_categorical;

static const char HEX[] = "0123456789abcdef";

static int grow(Buf *b, Py_ssize_t need)
{
    if (b->len + need <= b->cap)
        return 0;
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

static inline int put(Buf *b, const char *s, Py_ssize_t n)
{
    if (grow(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

#define PUT(b, lit) put((b), (lit), (Py_ssize_t)sizeof(lit) - 1)

/* A declined span: no exception set, the caller hands the span to Python. */
static inline int decline(void) { return -1; }

/* ------------------------------------------------------------------ JSON values */

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

/* A str's characters, escaped, without quotes. UTF-8 mode writes what orjson writes (raw
 * UTF-8; a lone surrogate is declined, as orjson refuses it); ASCII mode what the stdlib's
 * json writes (everything outside space..'~' escaped). */
static int put_chars(Buf *b, PyObject *s, int ascii)
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
        Py_ssize_t start = 0;
        for (Py_ssize_t i = 0; i < n;) {
            uint64_t v;
            if (i + 8 <= n && (memcpy(&v, u + i, 8), !needs_escape(v, ascii))) {
                i += 8; /* eight bytes at a time while none needs escaping */
                continue;
            }
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

static int put_str(Buf *b, PyObject *s, int ascii)
{
    if (PUT(b, "\"") < 0 || put_chars(b, s, ascii) < 0)
        return -1;
    return PUT(b, "\"");
}

static int put_i64(Buf *b, long long v)
{
    char tmp[24];
    char *end = tmp + sizeof tmp, *p = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return put(b, p, end - p);
}

/* An exact int, as both encoders write it; beyond 64 bits declined (orjson refuses it,
 * the stdlib path keeps its own rules). */
static int put_int(Buf *b, PyObject *v)
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

/* A finite float as repr() writes it; orjson writes exponents differently, so those are
 * declined in UTF-8 mode. */
static int put_float(Buf *b, PyObject *v, int ascii)
{
    double x = PyFloat_AS_DOUBLE(v);
    if (!isfinite(x))
        return decline();
    char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL)
        return -1;
    int ok = ascii || strchr(text, 'e') == NULL;
    int rc = ok ? put(b, text, (Py_ssize_t)strlen(text)) : decline();
    PyMem_Free(text);
    return rc;
}

/* Any value through the package's own encoder (dumps), for what the Python rules built. */
static int put_dumped(Buf *b, PyObject *value)
{
    PyObject *bytes = PyObject_CallOneArg(cfg[K_DUMPS], value);
    if (bytes == NULL || !PyBytes_Check(bytes)) {
        Py_XDECREF(bytes);
        PyErr_Clear();
        return decline();
    }
    int rc = put(b, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
    Py_DECREF(bytes);
    return rc;
}

/* Call a one-argument helper and write its result (loads, as_object). */
static int put_through(Buf *b, PyObject *helper, PyObject *value)
{
    PyObject *result = PyObject_CallOneArg(helper, value);
    if (result == NULL) {
        PyErr_Clear(); /* Python's rule may keep the text: let it decide */
        return decline();
    }
    int rc = put_dumped(b, result);
    Py_DECREF(result);
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
static int hex_id(PyObject *v, char *out, int words)
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

/* ------------------------------------------------------------------ JSON text payloads */

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
        uint64_t v;
        if (c->end - c->p >= 8 && (memcpy(&v, c->p, 8), !needs_escape(v, 0))) {
            c->p += 8; /* eight plain bytes */
            continue;
        }
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
static int put_compact(Buf *b, const char *text, Py_ssize_t n)
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

/* A JSON-tagged payload: compacted here when plain, else through loads and dumps. In
 * UTF-8 mode the str's own UTF-8 is what orjson writes; in ASCII mode the stdlib writes
 * the same bytes only for ASCII text without DEL (it escapes the rest). */
static int put_json_text(Buf *b, PyObject *value, int ascii)
{
    Py_ssize_t n;
    const char *text = NULL;
    if (!ascii) {
        if ((text = PyUnicode_AsUTF8AndSize(value, &n)) == NULL) {
            PyErr_Clear();
            return decline();
        }
    } else if (PyUnicode_IS_COMPACT_ASCII(value)) {
        text = (const char *)PyUnicode_DATA(value);
        n = PyUnicode_GET_LENGTH(value);
        if (memchr(text, 0x7f, n) != NULL)
            text = NULL;
    }
    if (text != NULL) {
        int rc = put_compact(b, text, n);
        if (rc <= 0)
            return rc;
    }
    return put_through(b, cfg[K_LOADS], value);
}

/* ------------------------------------------------------------------ span parts */

static inline PyObject *get(PyObject *dict, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(dict, key); /* borrowed */
    return v == Py_None ? NULL : v;
}

/* get() with a strong reference: the value outlives any Python code run meanwhile (a
 * hostile __eq__ may replace it in the dict). */
static inline PyObject *get_ref(PyObject *dict, PyObject *key)
{
    PyObject *v = get(dict, key);
    Py_XINCREF(v);
    return v;
}

static int is_json_mime(PyObject *mime)
{
    if (mime == NULL)
        return 0;
    int eq = PyObject_RichCompareBool(mime, cfg[K_MIME_JSON], Py_EQ);
    if (eq < 0)
        PyErr_Clear();
    return eq;
}

/* input / output (convert._payload) and expected_output (convert._expected). */
static int put_payload(Buf *b, PyObject *value, PyObject *mime, int expected, int ascii)
{
    if (!PyUnicode_CheckExact(value))
        return decline();
    int json = is_json_mime(mime);
    if (json < 0)
        return decline();
    if (expected && mime == NULL) {
        Py_UCS4 first = PyUnicode_GET_LENGTH(value) ? PyUnicode_READ_CHAR(value, 0) : 0;
        json = first == '{' || first == '[';
    }
    return json ? put_json_text(b, value, ascii) : put_str(b, value, ascii);
}

/* The `meta` member: input, output, expected_output, metadata, those present. */
static int put_meta(Buf *b, PyObject *attrs, int ascii)
{
    static const char *members[4] = {"\"input\":", "\"output\":", "\"expected_output\":",
                                     "\"metadata\":"};
    const int keys[4][2] = {{K_INPUT_VALUE, K_INPUT_MIME}, {K_OUTPUT_VALUE, K_OUTPUT_MIME},
                            {K_EXPECTED_VALUE, K_EXPECTED_MIME}, {K_METADATA, -1}};
    int first = 1;
    for (int i = 0; i < 4; i++) {
        PyObject *value = get_ref(attrs, cfg[keys[i][0]]);
        if (value == NULL) {
            if (PyErr_Occurred())
                return -1;
            continue;
        }
        PyObject *mime = keys[i][1] < 0 ? NULL : get_ref(attrs, cfg[keys[i][1]]);
        int rc = put(b, first ? "{" : ",", 1);
        if (rc == 0 && !PyErr_Occurred())
            rc = put(b, members[i], (Py_ssize_t)strlen(members[i]));
        else
            rc = -1;
        if (rc == 0)
            rc = i < 3 ? put_payload(b, value, mime, i == 2, ascii)
                       : put_through(b, cfg[K_AS_OBJECT], value);
        Py_DECREF(value);
        Py_XDECREF(mime);
        if (rc < 0)
            return -1;
        first = 0;
    }
    return first ? PUT(b, "{}") : PUT(b, "}");
}

/* One metric entry (metrics.metric_from_event's fast path); declined unless the event
 * is exactly what record_metric writes. */
static int write_metric(Buf *b, PyObject *ea, PyObject *label, PyObject *value, PyObject *type,
                        PyObject *event_ts, const char *ids, int ascii)
{
    if (PyErr_Occurred() || label == NULL || !PyUnicode_CheckExact(label) || type == NULL
        || !PyUnicode_CheckExact(type) || value == NULL)
        return decline();
    Py_ssize_t n = PyUnicode_GET_LENGTH(label);
    if (n > 256 || (n > 128 && !PyUnicode_IS_ASCII(label)))
        return decline();
    Py_ssize_t i = 0; /* label.strip() must leave something */
    while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(label, i)))
        i++;
    if (i == n)
        return decline();
    const char *value_member;
    if (PyUnicode_Compare(type, s_score) == 0) {
        if (PyLong_CheckExact(value)) {
            int overflow;
            long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
            if (overflow || x > (1LL << 53) || x < -(1LL << 53))
                return decline();
        } else if (!PyFloat_CheckExact(value) || !isfinite(PyFloat_AS_DOUBLE(value))) {
            return decline();
        }
        value_member = ",\"score_value\":";
    } else if (PyUnicode_Compare(type, s_boolean) == 0) {
        if (!PyBool_Check(value))
            return decline();
        value_member = ",\"boolean_value\":";
    } else if (PyUnicode_Compare(type, s_categorical) == 0) {
        if (!PyUnicode_CheckExact(value) || PyUnicode_GET_LENGTH(value) > 1024)
            return decline();
        value_member = ",\"categorical_value\":";
    } else {
        return decline();
    }
    if (PyErr_Occurred())
        return -1;
    long long ts;
    PyObject *ts_ms = get(ea, cfg[K_METRIC_TS]);
    if (ts_ms != NULL && PyLong_CheckExact(ts_ms)) {
        int overflow;
        ts = PyLong_AsLongLongAndOverflow(ts_ms, &overflow);
        if (overflow)
            return decline();
        if (ts < 0)
            ts_ms = NULL;
    } else if (ts_ms != NULL && PyLong_Check(ts_ms) && !PyBool_Check(ts_ms)) {
        return decline(); /* an int subclass: Python's isinstance rules */
    } else {
        ts_ms = NULL;
    }
    if (ts_ms == NULL) {
        if (event_ts == NULL || event_ts == Py_None) {
            ts = 0;
        } else {
            int overflow;
            if (!PyLong_CheckExact(event_ts))
                return decline();
            long long ns = PyLong_AsLongLongAndOverflow(event_ts, &overflow);
            if (overflow || ns < 0)
                return decline();
            ts = ns / 1000000;
        }
    }
    if (PUT(b, "{\"span_id\":\"") < 0 || put(b, ids + 32, 16) < 0 || PUT(b, "\",\"trace_id\":\"") < 0
        || put(b, ids, 32) < 0 || PUT(b, "\",\"metric_type\":") < 0
        || put_str(b, type, ascii) < 0 || PUT(b, ",\"label\":") < 0
        || put_str(b, label, ascii) < 0 || put(b, value_member, (Py_ssize_t)strlen(value_member)) < 0)
        return -1;
    int rc;
    if (value == Py_True)
        rc = PUT(b, "true");
    else if (value == Py_False)
        rc = PUT(b, "false");
    else if (PyLong_CheckExact(value))
        rc = put_int(b, value);
    else if (PyFloat_CheckExact(value))
        rc = put_float(b, value, ascii);
    else
        rc = put_str(b, value, ascii);
    if (rc < 0 || PUT(b, ",\"timestamp_ms\":") < 0 || put_i64(b, ts) < 0)
        return -1;
    PyObject *metadata = get_ref(ea, cfg[K_METRIC_METADATA]);
    if (metadata != NULL) {
        rc = PUT(b, ",\"metadata\":") < 0 ? -1 : put_through(b, cfg[K_AS_OBJECT], metadata);
        Py_DECREF(metadata);
        if (rc < 0)
            return -1;
    } else if (PyErr_Occurred()) {
        return -1;
    }
    return PUT(b, "}");
}

static int put_metric(Buf *b, PyObject *ea, PyObject *event_ts, const char *ids, int ascii)
{
    PyObject *label = get_ref(ea, cfg[K_METRIC_LABEL]);
    PyObject *value = get_ref(ea, cfg[K_METRIC_VALUE]);
    PyObject *type = get_ref(ea, cfg[K_METRIC_TYPE]);
    int rc = write_metric(b, ea, label, value, type, event_ts, ids, ascii);
    Py_XDECREF(label);
    Py_XDECREF(value);
    Py_XDECREF(type);
    return rc;
}

/* The plain dict behind an SDK BoundedAttributes (compat.attribute_dict). */
static PyObject *inner_dict(PyObject *attributes)
{
    if (PyDict_CheckExact(attributes)) {
        Py_INCREF(attributes);
        return attributes;
    }
    PyObject *inner = PyObject_GetAttr(attributes, cfg[N_INNER]);
    if (inner == NULL || !PyDict_CheckExact(inner)) {
        Py_XDECREF(inner);
        PyErr_Clear();
        return NULL;
    }
    return inner;
}

typedef struct {
    PyObject *resource, *kind, *base; /* the last (resource, kind) and its tags (held) */
    PyObject *shapes, *kept;
    int ascii;
    PyObject *last_keys, *last_shape; /* the last key tuple looked up and its shape */
} Run;

static int put_tags(Buf *b, Run *run, PyObject *fields, PyObject *attrs, PyObject *pairs)
{
    PyObject *resource = PyDict_GetItemWithError(fields, cfg[N_RESOURCE]);
    PyObject *kind = PyDict_GetItemWithError(fields, cfg[N_KIND]);
    if (resource == NULL || kind == NULL)
        return decline();
    if (run->base == NULL || resource != run->resource || kind != run->kind) {
        Py_INCREF(resource); /* held: the cache compares them by identity */
        Py_INCREF(kind);
        Py_XSETREF(run->resource, resource);
        Py_XSETREF(run->kind, kind);
        PyObject *base = PyObject_CallFunctionObjArgs(cfg[K_BASE_TAGS], resource, kind, NULL);
        if (base == NULL || !PyTuple_Check(base) || PyTuple_GET_SIZE(base) != 2
            || !PyList_Check(PyTuple_GET_ITEM(base, 0))) {
            Py_XDECREF(base);
            Py_CLEAR(run->base);
            PyErr_Clear();
            return decline();
        }
        Py_XSETREF(run->base, base);
    }
    /* a list only this call holds (from _base_tags): no Python code can reach it */
    PyObject *resource_tags = PyTuple_GET_ITEM(run->base, 0);
    char sep = '[';
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(resource_tags); i++) {
        if (put(b, &sep, 1) < 0 || put_str(b, PyList_GET_ITEM(resource_tags, i), run->ascii) < 0)
            return -1;
        sep = ',';
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(pairs); i++) {
        PyObject *pair = PyTuple_GET_ITEM(pairs, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2)
            return decline();
        PyObject *value = PyDict_GetItemWithError(attrs, PyTuple_GET_ITEM(pair, 0));
        if (value == NULL)
            return decline();
        if (value == Py_None)
            continue;
        if (!PyUnicode_CheckExact(value))
            return decline(); /* formatted by Python */
        if (put(b, &sep, 1) < 0 || PUT(b, "\"") < 0
            || put_chars(b, PyTuple_GET_ITEM(pair, 1), run->ascii) < 0
            || put_chars(b, value, run->ascii) < 0 || PUT(b, "\"") < 0)
            return -1;
        sep = ',';
    }
    if (put(b, &sep, 1) < 0 || put_str(b, PyTuple_GET_ITEM(run->base, 1), run->ascii) < 0)
        return -1;
    return PUT(b, "]");
}

/* The attribute keys' shape (shapes.KeptAttributes.shape). Spans from one code path hold
 * the same key objects in the same order: the last span's shape is reused without a tuple
 * or a hash when every key is the very same object. */
static PyObject *shape_of(Run *run, PyObject *attrs)
{
    Py_ssize_t n = PyDict_GET_SIZE(attrs), pos = 0, i = 0;
    PyObject *key, *value;
    if (run->last_keys != NULL && PyTuple_GET_SIZE(run->last_keys) == n) {
        while (PyDict_Next(attrs, &pos, &key, &value) && key == PyTuple_GET_ITEM(run->last_keys, i))
            i++;
        if (i == n) {
            Py_INCREF(run->last_shape);
            return run->last_shape;
        }
        pos = 0;
        i = 0;
    }
    PyObject *keys = PyTuple_New(n);
    if (keys == NULL)
        return NULL;
    while (PyDict_Next(attrs, &pos, &key, &value)) {
        Py_INCREF(key);
        PyTuple_SET_ITEM(keys, i++, key);
    }
    PyObject *shape = PyDict_GetItemWithError(run->shapes, keys);
    if (shape != NULL)
        Py_INCREF(shape);
    else if (!PyErr_Occurred())
        shape = PyObject_CallMethodOneArg(run->kept, s_shape, keys);
    if (shape != NULL && (!PyTuple_Check(shape) || PyTuple_GET_SIZE(shape) != 4
                          || !PyTuple_Check(PyTuple_GET_ITEM(shape, 0))
                          || !PyTuple_Check(PyTuple_GET_ITEM(shape, 3)))) {
        Py_CLEAR(shape);
    }
    if (shape != NULL) {
        Py_XSETREF(run->last_keys, keys);
        Py_INCREF(shape);
        Py_XSETREF(run->last_shape, shape);
    } else {
        Py_DECREF(keys);
    }
    return shape;
}

/* One span: (event bytes, tuple of metric bytes) and its experiment id in *eid (a new
 * reference), or NULL to decline. */
static PyObject *encode_span(Run *run, Buf *b, PyObject *span, PyObject **eid)
{
    PyObject *fields = NULL, *attrs = NULL, *shape = NULL, *events = NULL, *result = NULL;
    PyObject *metric_offsets = NULL, *held[9] = {NULL};
    b->len = 0;
    fields = PyObject_GetAttr(span, s_dict);
    if (fields == NULL || !PyDict_Check(fields))
        goto done;
    PyObject *name = PyDict_GetItemWithError(fields, cfg[N_NAME]);
    PyObject *ctx = PyDict_GetItemWithError(fields, cfg[N_CONTEXT]);
    PyObject *parent = PyDict_GetItemWithError(fields, cfg[N_PARENT]);
    PyObject *start = PyDict_GetItemWithError(fields, cfg[N_START]);
    PyObject *end = PyDict_GetItemWithError(fields, cfg[N_END]);
    PyObject *status = PyDict_GetItemWithError(fields, cfg[N_STATUS]);
    PyObject *attributes = PyDict_GetItemWithError(fields, cfg[N_ATTRIBUTES]);
    PyObject *raw_events = PyDict_GetItemWithError(fields, cfg[N_EVENTS]);
    if (name == NULL || ctx == NULL || parent == NULL || start == NULL || end == NULL
        || status == NULL || attributes == NULL || raw_events == NULL)
        goto done;
    /* held: Python code called below (a property, a helper, a hostile __eq__) may
     * replace them in the span's dict */
    held[0] = name; held[1] = ctx; held[2] = parent; held[3] = start; held[4] = end;
    held[5] = status; held[6] = attributes; held[7] = raw_events;
    for (int h = 0; h < 8; h++)
        Py_INCREF(held[h]);
    if (!PyUnicode_CheckExact(name) || !PyTuple_Check(ctx) || PyTuple_GET_SIZE(ctx) < 2)
        goto done;
    attrs = inner_dict(attributes);
    if (attrs == NULL)
        goto done;
    PyObject *experiment_id = PyDict_GetItemWithError(attrs, cfg[K_EXPERIMENT_ID]);
    if (experiment_id == NULL || !PyUnicode_CheckExact(experiment_id)
        || PyUnicode_GET_LENGTH(experiment_id) == 0)
        goto done;
    Py_INCREF(experiment_id);
    held[8] = experiment_id;
    PyObject *code = PyObject_GetAttr(status, cfg[N_STATUS_CODE]);
    if (code == NULL)
        goto done;
    Py_DECREF(code);
    if (code == cfg[K_ERROR]) /* the error member: Python's rules */
        goto done;
    char ids[48]; /* trace id (32 hex) then span id (16 hex) */
    if (hex_id(PyTuple_GET_ITEM(ctx, 0), ids, 2) < 0 || hex_id(PyTuple_GET_ITEM(ctx, 1), ids + 32, 1) < 0)
        goto done;
    long long start_ns = 0, end_ns = 0, duration = 0;
    int overflow = 0;
    if (start != Py_None) {
        if (!PyLong_CheckExact(start))
            goto done;
        start_ns = PyLong_AsLongLongAndOverflow(start, &overflow);
        if (overflow || (start_ns == -1 && PyErr_Occurred()))
            goto done;
    }
    if (end != Py_None) {
        if (!PyLong_CheckExact(end))
            goto done;
        end_ns = PyLong_AsLongLongAndOverflow(end, &overflow);
        if (overflow || (end_ns == -1 && PyErr_Occurred()))
            goto done;
        if (end_ns > start_ns) {
            if (start_ns < 0 && end_ns > LLONG_MAX + start_ns)
                goto done;
            duration = end_ns - start_ns;
        }
    }
    shape = shape_of(run, attrs);
    if (shape == NULL)
        goto done;

    if (PUT(b, "{\"trace_id\":\"") < 0 || put(b, ids, 32) < 0 || PUT(b, "\",\"span_id\":\"") < 0
        || put(b, ids + 32, 16) < 0 || PUT(b, "\",\"name\":") < 0 || put_str(b, name, run->ascii) < 0 || PUT(b, ",\"start_ns\":") < 0
        || put_i64(b, start_ns) < 0 || PUT(b, ",\"duration\":") < 0 || put_i64(b, duration) < 0
        || PUT(b, ",\"status\":\"ok\",\"meta\":") < 0)
        goto done;
    if (PyObject_IsTrue(PyTuple_GET_ITEM(shape, 1)) == 1) {
        if (put_meta(b, attrs, run->ascii) < 0)
            goto done;
    } else if (PUT(b, "{}") < 0) {
        goto done;
    }
    if (PUT(b, ",\"tags\":") < 0 || put_tags(b, run, fields, attrs, PyTuple_GET_ITEM(shape, 0)) < 0)
        goto done;
    if (parent != Py_None) {
        char pid[16];
        if (!PyTuple_Check(parent) || PyTuple_GET_SIZE(parent) < 2
            || hex_id(PyTuple_GET_ITEM(parent, 1), pid, 1) < 0 || PUT(b, ",\"parent_id\":\"") < 0
            || put(b, pid, 16) < 0 || PUT(b, "\"") < 0)
            goto done;
    }
    if (PyObject_IsTrue(PyTuple_GET_ITEM(shape, 2)) == 1) {
        PyObject *record = PyDict_GetItemWithError(attrs, cfg[K_RECORD_ID]);
        if (record == NULL)
            goto done;
        if (PyUnicode_CheckExact(record)) {
            if (PyUnicode_GET_LENGTH(record) > 0
                && (PUT(b, ",\"dataset_record_id\":") < 0 || put_str(b, record, run->ascii) < 0))
                goto done;
        } else if (PyUnicode_Check(record)) {
            goto done;
        }
    }
    if (PyTuple_GET_SIZE(PyTuple_GET_ITEM(shape, 3)) > 0) {
        PyObject *kept = PyObject_CallFunctionObjArgs(cfg[K_KEPT_ATTRIBUTES], attrs,
                                                      PyTuple_GET_ITEM(shape, 3), NULL);
        if (kept == NULL)
            goto done;
        int rc = kept == Py_None ? 0 : (PUT(b, ",\"attributes\":") < 0 ? -1 : put_dumped(b, kept));
        Py_DECREF(kept);
        if (rc < 0)
            goto done;
    }
    if (PUT(b, "}") < 0)
        goto done;
    Py_ssize_t span_len = b->len;

    /* the span's metric events, each written after the span's bytes */
    Py_ssize_t offsets[65];
    Py_ssize_t count = 0;
    offsets[0] = span_len;
    PyObject *dq = PyObject_GetAttr(raw_events, cfg[N_DQ]);
    if (dq == NULL) {
        PyErr_Clear();
        if (!PyTuple_Check(raw_events) && !PyList_Check(raw_events))
            goto done;
        Py_INCREF(raw_events);
        dq = raw_events;
    }
    events = PyObject_GetIter(dq);
    Py_DECREF(dq);
    if (events == NULL)
        goto done;
    PyObject *event;
    while ((event = PyIter_Next(events)) != NULL) {
        PyObject *ed = PyObject_GetAttr(event, s_dict), *ename = NULL, *eattrs = NULL,
                 *ea = NULL, *ts = NULL;
        int rc = -1;
        if (ed != NULL && PyDict_Check(ed)) {
            ename = PyDict_GetItemWithError(ed, cfg[N_NAME]);
            eattrs = PyDict_GetItemWithError(ed, cfg[N_ATTRIBUTES]);
            ts = PyDict_GetItemWithError(ed, cfg[N_TIMESTAMP]);
            Py_XINCREF(ename); /* held, as the span's fields are */
            Py_XINCREF(eattrs);
            Py_XINCREF(ts);
        }
        /* an exact str compares without running Python code; anything else is Python's */
        if (ename != NULL && eattrs != NULL && PyUnicode_CheckExact(ename) && !PyErr_Occurred()) {
            if (PyUnicode_Compare(ename, cfg[K_METRIC_EVENT]) != 0)
                rc = 0;
            else if (count < 64 && (ea = inner_dict(eattrs)) != NULL) {
                rc = put_metric(b, ea, ts, ids, run->ascii);
                offsets[++count] = b->len;
            }
        }
        Py_XDECREF(ea);
        Py_XDECREF(ts);
        Py_XDECREF(eattrs);
        Py_XDECREF(ename);
        Py_XDECREF(ed);
        Py_DECREF(event);
        if (rc < 0)
            goto done;
    }
    if (PyErr_Occurred())
        goto done;
    metric_offsets = PyTuple_New(count);
    if (metric_offsets == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *m = PyBytes_FromStringAndSize(b->p + offsets[i], offsets[i + 1] - offsets[i]);
        if (m == NULL)
            goto done;
        PyTuple_SET_ITEM(metric_offsets, i, m);
    }
    PyObject *span_bytes = PyBytes_FromStringAndSize(b->p, span_len);
    if (span_bytes == NULL)
        goto done;
    result = PyTuple_Pack(2, span_bytes, metric_offsets);
    Py_DECREF(span_bytes);
    if (result != NULL) {
        Py_INCREF(experiment_id);
        *eid = experiment_id; /* a new reference for the caller */
    }
done:
    if (result == NULL)
        PyErr_Clear(); /* declined, or a failure: Python converts this span */
    Py_XDECREF(metric_offsets);
    Py_XDECREF(events);
    for (int h = 0; h < 9; h++)
        Py_XDECREF(held[h]);
    Py_XDECREF(shape);
    Py_XDECREF(attrs);
    Py_XDECREF(fields);
    return result;
}

/* ------------------------------------------------------------------ module */

static int run_open(Run *run, PyObject *kept, int ascii)
{
    if (cfg[K_COUNT - 1] == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.configure() was not called");
        return -1;
    }
    memset(run, 0, sizeof *run);
    run->kept = kept;
    run->ascii = ascii;
    run->shapes = PyObject_GetAttr(kept, s_shapes);
    if (run->shapes == NULL || !PyDict_Check(run->shapes)) {
        Py_CLEAR(run->shapes);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "kept.shapes must be a dict");
        return -1;
    }
    return 0;
}

static void run_close(Run *run)
{
    Py_XDECREF(run->base);
    Py_XDECREF(run->resource);
    Py_XDECREF(run->kind);
    Py_XDECREF(run->last_keys);
    Py_XDECREF(run->last_shape);
    Py_XDECREF(run->shapes);
}

/* (spans, kept, ascii) parsed, the run opened; the spans as a tuple of our own (Python
 * code run meanwhile cannot shrink it), or NULL. */
static PyObject *open_call(PyObject *args, const char *format, Run *run)
{
    PyObject *spans, *kept;
    int ascii;
    if (!PyArg_ParseTuple(args, format, &spans, &kept, &ascii))
        return NULL;
    PyObject *seq = PySequence_Tuple(spans);
    if (seq != NULL && run_open(run, kept, ascii) < 0)
        Py_CLEAR(seq);
    return seq;
}

/* For tests: per span (experiment id, event bytes, metric bytes) or None (declined). */
static PyObject *encode_spans(PyObject *self, PyObject *args)
{
    PyObject *eid;
    Run run;
    PyObject *seq = open_call(args, "OOp:encode_spans", &run);
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    Buf b = {NULL, 0, 0};
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *pair = encode_span(&run, &b, PyTuple_GET_ITEM(seq, i), &eid);
        PyObject *r = pair == NULL ? Py_NewRef(Py_None)
            : PyTuple_Pack(3, eid, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
        if (pair != NULL)
            Py_DECREF(eid);
        Py_XDECREF(pair);
        if (r == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, r);
    }
    PyMem_Free(b.p);
    run_close(&run);
    Py_DECREF(seq);
    return out;
}

/* The experiment id of a span C declined, by Python's own rule (convert.experiment_id_of):
 * a new reference, Py_None when it has none, NULL when even that failed. */
static PyObject *declined_experiment_id(PyObject *span)
{
    PyObject *eid = PyObject_CallOneArg(cfg[K_EXPERIMENT_ID_OF], span);
    if (eid != NULL && eid != Py_None && !PyUnicode_Check(eid))
        Py_CLEAR(eid);
    PyErr_Clear();
    return eid;
}

/* The exporter's call: ({experiment id: [(event bytes, metric bytes), ...]}, declined),
 * spans in input order; a declined span holds its place as None in its experiment's list
 * and is listed in declined as (experiment id, index in that list, span), or as
 * (None, -1, span) when even its experiment id is for Python to read. */
static PyObject *encode_groups(PyObject *self, PyObject *args)
{
    Run run;
    PyObject *seq = open_call(args, "OOp:encode_groups", &run);
    if (seq == NULL)
        return NULL;
    PyObject *groups = PyDict_New(), *declined = PyList_New(0), *result = NULL;
    PyObject *last_eid = NULL, *last_list = NULL; /* spans of one experiment come in runs */
    Buf b = {NULL, 0, 0};
    if (groups == NULL || declined == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        PyObject *span = PyTuple_GET_ITEM(seq, i), *eid = NULL, *entry = NULL;
        PyObject *pair = encode_span(&run, &b, span, &eid);
        int rc = 0;
        if (pair == NULL) {
            eid = declined_experiment_id(span);
            if (eid == Py_None) { /* no experiment: Python skips it too */
                Py_DECREF(eid);
                continue;
            }
            if (eid == NULL) { /* Python converts it and files it itself */
                entry = Py_BuildValue("(OnO)", Py_None, (Py_ssize_t)-1, span);
                rc = entry == NULL ? -1 : PyList_Append(declined, entry);
                Py_XDECREF(entry);
                if (rc < 0)
                    goto fail;
                continue;
            }
        }
        PyObject *list = last_list;
        if (last_eid == NULL || (eid != last_eid && PyUnicode_Compare(eid, last_eid) != 0)) {
            list = PyDict_GetItemWithError(groups, eid);
            if (list == NULL && !PyErr_Occurred() && (list = PyList_New(0)) != NULL) {
                rc = PyDict_SetItem(groups, eid, list);
                Py_DECREF(list); /* the dict holds it */
            }
            if (list == NULL || rc < 0 || PyErr_Occurred()) {
                Py_XDECREF(pair);
                Py_DECREF(eid);
                goto fail;
            }
            Py_INCREF(eid);
            Py_XSETREF(last_eid, eid);
            last_list = list; /* the dict holds it, and nothing else changes the dict */
        }
        if (pair != NULL) {
            rc = PyList_Append(list, pair);
            Py_DECREF(pair);
        } else {
            entry = Py_BuildValue("(OnO)", eid, PyList_GET_SIZE(list), span);
            rc = entry == NULL || PyList_Append(list, Py_None) < 0 || PyList_Append(declined, entry) < 0
                ? -1 : 0;
            Py_XDECREF(entry);
        }
        Py_DECREF(eid);
        if (rc < 0)
            goto fail;
    }
    result = PyTuple_Pack(2, groups, declined);
fail:
    PyMem_Free(b.p);
    run_close(&run);
    Py_XDECREF(last_eid);
    Py_XDECREF(groups);
    Py_XDECREF(declined);
    Py_DECREF(seq);
    return result;
}

/* prefix + ",".join(spans) + middle + ",".join(metrics) + suffix, copied once (the two
 * joins and the outer one of Python copy a body of megabytes three times). */
static PyObject *join_body(PyObject *self, PyObject *args)
{
    PyObject *parts[5], *lists[2];
    if (!PyArg_ParseTuple(args, "SO!SO!S:join_body", &parts[0], &PyList_Type, &lists[0],
                          &parts[2], &PyList_Type, &lists[1], &parts[4]))
        return NULL;
    Py_ssize_t size = PyBytes_GET_SIZE(parts[0]) + PyBytes_GET_SIZE(parts[2])
                      + PyBytes_GET_SIZE(parts[4]);
    for (int l = 0; l < 2; l++) {
        Py_ssize_t n = PyList_GET_SIZE(lists[l]);
        size += n > 0 ? n - 1 : 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PyList_GET_ITEM(lists[l], i);
            if (!PyBytes_Check(item)) {
                PyErr_SetString(PyExc_TypeError, "join_body() joins bytes");
                return NULL;
            }
            size += PyBytes_GET_SIZE(item);
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    char *w = PyBytes_AS_STRING(out);
    for (int k = 0; k < 5; k++) {
        if (k == 1 || k == 3) {
            PyObject *list = lists[k / 2];
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
                PyObject *item = PyList_GET_ITEM(list, i);
                if (i > 0)
                    *w++ = ',';
                memcpy(w, PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item));
                w += PyBytes_GET_SIZE(item);
            }
        } else {
            memcpy(w, PyBytes_AS_STRING(parts[k]), PyBytes_GET_SIZE(parts[k]));
            w += PyBytes_GET_SIZE(parts[k]);
        }
    }
    return out;
}

static PyObject *compact_json(PyObject *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "compact_json() takes a str");
        return NULL;
    }
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(arg, &n);
    if (text == NULL)
        return NULL;
    Buf b = {NULL, 0, 0};
    int rc = put_compact(&b, text, n);
    PyObject *out = rc < 0 ? NULL : rc > 0 ? Py_NewRef(Py_None) : PyBytes_FromStringAndSize(b.p, b.len);
    PyMem_Free(b.p);
    return out;
}

static PyObject *configure(PyObject *self, PyObject *args)
{
    if (PyTuple_GET_SIZE(args) != K_COUNT) {
        PyErr_Format(PyExc_TypeError, "configure() takes %d arguments", K_COUNT);
        return NULL;
    }
    for (int i = 0; i < K_COUNT; i++) {
        PyObject *v = PyTuple_GET_ITEM(args, i);
        Py_INCREF(v);
        if (PyUnicode_CheckExact(v))
            PyUnicode_InternInPlace(&v);
        Py_XSETREF(cfg[i], v);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"encode_spans", encode_spans, METH_VARARGS,
     "encode_spans(spans, kept, ascii) -> list of (experiment_id, event bytes, metric bytes) "
     "or None per span (None: the Python converter takes that span)"},
    {"encode_groups", encode_groups, METH_VARARGS,
     "encode_groups(spans, kept, ascii) -> ({experiment id: [(event bytes, metric bytes) or "
     "None]}, [(experiment id or None, index, declined span)])"},
    {"join_body", join_body, METH_VARARGS,
     "join_body(prefix, spans, middle, metrics, suffix) -> one body's bytes"},
    {"compact_json", compact_json, METH_O,
     "compact_json(text) -> the bytes orjson.dumps(orjson.loads(text)) gives, or None when "
     "the text is not the plain subset the C encoder compacts itself"},
    {"configure", configure, METH_VARARGS, "configure(*keys_and_helpers): set once at import"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "The events converter's common case in C.", -1, methods,
};

#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL

PyMODINIT_FUNC PyInit__speedups(void)
{
    INTERN(s_dict, "__dict__");
    INTERN(s_shapes, "shapes");
    INTERN(s_shape, "shape");
    INTERN(s_score, "score");
    INTERN(s_boolean, "boolean");
    INTERN(s_categorical, "categorical");
    return PyModule_Create(&module);
}
