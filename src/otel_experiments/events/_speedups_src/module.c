/* The module `otel_experiments.events._speedups`: the converter's common case in C, a
 * finished SDK span straight to its event's JSON bytes (events/native.py calls it).
 *
 * Writes exactly the bytes `dumps(span_to_event(span)[1])` gives (and each metric's), for
 * the spans it knows: string attributes, ints within 64 bits, finite floats, status not
 * ERROR, metric events as `record_metric` writes them. Everything else is declined (None)
 * and the Python converter (events/convert.py), which holds the rules, does the span:
 * these files only restate the common case, and the tests compare both on random spans.
 * Values the rules hand to Python helpers (JSON payloads, metadata, kept attributes, the
 * resource tags, a new attribute-key shape) are computed by those helpers, called from here.
 *
 * buffer.h  the byte buffer       json.c / compact.c  JSON values, JSON text compacted
 * span.c    one span's event      payloads.c          meta members and metric entries
 * module.c  the entry points (encode_groups, encode_spans, join_body, compact_json)
 */
#include "span.h"

PyObject *cfg[K_COUNT];
PyObject *s_dict, *s_shapes, *s_shape, *s_score, *s_boolean, *s_categorical;

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
            if (PyBytes_GET_SIZE(item) > PY_SSIZE_T_MAX - size - 1)
                return PyErr_NoMemory();
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
