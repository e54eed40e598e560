/* The parts of an event the Python rules shape: input / output / expected_output /
 * metadata (JSON payloads compacted here or re-encoded through loads and dumps), and
 * metric entries. */
#include <math.h>

#include "span.h"

/* Any value through the package's own encoder (dumps), for what the Python rules built. */
int put_dumped(Buf *b, PyObject *value)
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
int put_through(Buf *b, PyObject *helper, PyObject *value)
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
int put_meta(Buf *b, PyObject *attrs, int ascii)
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

int put_metric(Buf *b, PyObject *ea, PyObject *event_ts, const char *ids, int ascii)
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
