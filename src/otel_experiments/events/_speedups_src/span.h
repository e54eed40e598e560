/* What the span encoder shares between its units: the keys and helpers configure() sets,
 * one call's state, and the parts of a span event. */
#ifndef OTEL_EXPERIMENTS_SPAN_H
#define OTEL_EXPERIMENTS_SPAN_H

#include "json.h"

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
extern PyObject *cfg[K_COUNT];
extern PyObject *s_dict, *s_shapes, *s_shape, *s_score, *s_boolean, *s_categorical;

typedef struct {
    PyObject *resource, *kind, *base; /* the last (resource, kind) and its tags (held) */
    PyObject *shapes, *kept;
    int ascii;
    PyObject *last_keys, *last_shape; /* the last key tuple looked up and its shape */
} Run;

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

/* A field of an object's __dict__, with a strong reference (NULL: absent, or an error). */
static inline PyObject *get_field_ref(PyObject *dict, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(dict, key);
    Py_XINCREF(v);
    return v;
}

PyObject *inner_dict(PyObject *attributes);
int put_dumped(Buf *b, PyObject *value);
int put_through(Buf *b, PyObject *helper, PyObject *value);
int put_meta(Buf *b, PyObject *attrs, int ascii);
int put_metric(Buf *b, PyObject *ea, PyObject *event_ts, const char *ids, int ascii);
PyObject *encode_span(Run *run, Buf *b, PyObject *span, PyObject **eid);
int run_open(Run *run, PyObject *kept, int ascii);
void run_close(Run *run);

#endif
