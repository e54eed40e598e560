/* One finished span to its event's bytes and its metrics' bytes (or declined). */
#include <limits.h>

#include "span.h"

/* The plain dict behind an SDK BoundedAttributes (compat.attribute_dict). */
PyObject *inner_dict(PyObject *attributes)
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

static int put_tags(Buf *b, Run *run, PyObject *fields, PyObject *attrs, PyObject *pairs)
{
    PyObject *resource = get_field_ref(fields, cfg[N_RESOURCE]);
    PyObject *kind = resource == NULL ? NULL : get_field_ref(fields, cfg[N_KIND]);
    if (resource == NULL || kind == NULL) {
        Py_XDECREF(resource);
        return decline();
    }
    if (run->base != NULL && resource == run->resource && kind == run->kind) {
        Py_DECREF(resource);
        Py_DECREF(kind);
    } else { /* held in the run: the cache compares them by identity */
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
        while (i < n && PyDict_Next(attrs, &pos, &key, &value)
               && key == PyTuple_GET_ITEM(run->last_keys, i))
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
    /* PyTuple_New may collect garbage, and a finalizer may change the dict */
    while (i < n && PyDict_Next(attrs, &pos, &key, &value)) {
        Py_INCREF(key);
        PyTuple_SET_ITEM(keys, i++, key);
    }
    if (i != n || PyDict_GET_SIZE(attrs) != n) {
        Py_DECREF(keys); /* unset slots are NULL: tupledealloc skips them */
        return NULL;
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

/* A span's start or end: an exact int within 64 bits into *out (None leaves it); -1 to
 * decline. */
static int time_ns(PyObject *v, long long *out)
{
    int overflow;
    if (v == Py_None)
        return 0;
    if (!PyLong_CheckExact(v))
        return decline();
    *out = PyLong_AsLongLongAndOverflow(v, &overflow);
    return overflow || (*out == -1 && PyErr_Occurred()) ? decline() : 0;
}

/* One span: (event bytes, tuple of metric bytes) and its experiment id in *eid (a new
 * reference), or NULL to decline. */
PyObject *encode_span(Run *run, Buf *b, PyObject *span, PyObject **eid)
{
    PyObject *fields = NULL, *attrs = NULL, *shape = NULL, *events = NULL, *result = NULL;
    PyObject *metric_offsets = NULL, *held[9] = {NULL};
    b->len = 0;
    fields = PyObject_GetAttr(span, s_dict);
    if (fields == NULL || !PyDict_Check(fields))
        goto done;
    /* each value held as soon as it is read: a later lookup may run a hostile key's
     * __eq__, and Python code called below (a property, a helper) may replace them */
    static const int names[8] = {N_NAME, N_CONTEXT, N_PARENT, N_START, N_END, N_STATUS,
                                 N_ATTRIBUTES, N_EVENTS};
    for (int h = 0; h < 8; h++) {
        held[h] = PyDict_GetItemWithError(fields, cfg[names[h]]);
        if (held[h] == NULL)
            goto done;
        Py_INCREF(held[h]);
    }
    PyObject *name = held[0], *ctx = held[1], *parent = held[2], *start = held[3],
             *end = held[4], *status = held[5], *attributes = held[6], *raw_events = held[7];
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
    if (time_ns(start, &start_ns) < 0 || time_ns(end, &end_ns) < 0)
        goto done;
    if (end != Py_None && end_ns > start_ns) {
        if (start_ns < 0 && end_ns > LLONG_MAX + start_ns)
            goto done;
        duration = end_ns - start_ns;
    }
    shape = shape_of(run, attrs);
    if (shape == NULL)
        goto done;

    if (PUT(b, "{\"trace_id\":\"") < 0 || put(b, ids, 32) < 0 || PUT(b, "\",\"span_id\":\"") < 0
        || put(b, ids + 32, 16) < 0 || PUT(b, "\",\"name\":") < 0 || put_str(b, name, run->ascii) < 0 || PUT(b, ",\"start_ns\":") < 0
        || put_i64(b, start_ns) < 0 || PUT(b, ",\"duration\":") < 0 || put_i64(b, duration) < 0
        || PUT(b, ",\"status\":\"ok\",\"meta\":") < 0)
        goto done;
    int payload = PyObject_IsTrue(PyTuple_GET_ITEM(shape, 1));
    int record_id = PyObject_IsTrue(PyTuple_GET_ITEM(shape, 2));
    if (payload < 0 || record_id < 0)
        goto done;
    if (payload) {
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
    if (record_id) {
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
            ename = get_field_ref(ed, cfg[N_NAME]); /* held, as the span's fields are */
            eattrs = ename == NULL ? NULL : get_field_ref(ed, cfg[N_ATTRIBUTES]);
            ts = eattrs == NULL ? NULL : get_field_ref(ed, cfg[N_TIMESTAMP]);
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

int run_open(Run *run, PyObject *kept, int ascii)
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

void run_close(Run *run)
{
    Py_XDECREF(run->base);
    Py_XDECREF(run->resource);
    Py_XDECREF(run->kind);
    Py_XDECREF(run->last_keys);
    Py_XDECREF(run->last_shape);
    Py_XDECREF(run->shapes);
}
