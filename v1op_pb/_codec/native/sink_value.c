/* The value sink of emit.c: the dicts, lists and scalars the Python encoder builds (encode's
 * answer, what to_dict returns). Containers are put into their parent when opened; the
 * stack holds the open ones, borrowed from their parents (the first from root).
 */
#include "native.h"
#include <math.h>

/* Put v (a new reference, or NULL after an error) where the next value goes: under the
 * key given last in an object, at the end of an array (PyList_Append refuses a dict). */
static int add(ValueSink *s, PyObject *v) {
    if (v == NULL) return ERR;
    int rc = 0;
    if (s->n == 0) {
        Py_XSETREF(s->root, v);
        return OK;
    }
    PyObject *top = s->stack[s->n - 1];
    if (s->key != NULL) {
        rc = PyDict_SetItem(top, s->key, v);
        if (s->owned) Py_DECREF(s->key);
        s->key = NULL;
    } else {
        rc = PyList_Append(top, v);
    }
    Py_DECREF(v);
    return rc < 0 ? ERR : OK;
}

static int value_open(Sink *sink, int bracket) {
    ValueSink *s = (ValueSink *)sink;
    if (s->n == s->cap && vec_reserve((void **)&s->stack, &s->cap, s->n + 1, sizeof(PyObject *)) != OK)
        return ERR;
    PyObject *v = bracket == '{' ? PyDict_New() : PyList_New(0);
    if (add(s, v) != OK) return ERR;
    s->stack[s->n++] = v; /* held by its parent */
    return OK;
}

static int value_close(Sink *sink, int bracket) {
    ((ValueSink *)sink)->n--;
    return OK;
}

/* A str of UTF-8 (DECLINE when it is not: the Python codec reports it). */
static int decode(const char *p, Py_ssize_t n, PyObject **out) {
    *out = PyUnicode_DecodeUTF8(p, n, NULL);
    if (*out != NULL || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return *out ? OK : ERR;
    PyErr_Clear();
    return DECLINE;
}

/* The keys the table holds (field names, "@type") outlive the conversion: borrowed. */
static int value_field_key(Sink *sink, const Field *f) {
    ValueSink *s = (ValueSink *)sink;
    s->key = f->json_key;
    s->owned = 0;
    return OK;
}

static int value_key(Sink *sink, PyObject *obj, const char *key, Py_ssize_t n) {
    ValueSink *s = (ValueSink *)sink;
    s->key = obj;
    s->owned = obj == NULL;
    return obj != NULL ? OK : decode(key, n, &s->key);
}

static int value_str(Sink *sink, const char *p, Py_ssize_t n, int ascii) {
    PyObject *v = NULL;
    if (ascii && (v = PyUnicode_New(n, 127)) != NULL) memcpy(PyUnicode_DATA(v), p, (size_t)n);
    int rc = ascii ? OK : decode(p, n, &v);
    return rc == OK ? add((ValueSink *)sink, v) : rc;
}

static int value_b64(Sink *sink, const uint8_t *p, Py_ssize_t n) {
    if (n > (PY_SSIZE_T_MAX / 4) * 3 - 3) return add((ValueSink *)sink, PyErr_NoMemory());
    PyObject *text = PyUnicode_New(base64_size(n), 127);
    if (text != NULL) base64_write((char *)PyUnicode_DATA(text), p, n);
    return add((ValueSink *)sink, text);
}

static int value_integer(Sink *sink, int64_t v) {
    return add((ValueSink *)sink, PyLong_FromLongLong(v));
}

static int value_number(Sink *sink, double d) {
    ValueSink *s = (ValueSink *)sink;
    if (isnan(d)) return add(s, Py_NewRef(s->st->s_nan));
    if (isinf(d)) return add(s, Py_NewRef(d > 0 ? s->st->s_inf : s->st->s_ninf));
    return add(s, PyFloat_FromDouble(d));
}

static int value_literal(Sink *sink, int kind) {
    return add((ValueSink *)sink,
               Py_NewRef(kind == K_NULL ? Py_None : kind == K_TRUE ? Py_True : Py_False));
}

/* A value the table holds: fresh containers ([] and {} for unset repeated fields and maps),
 * so that callers own what they get. */
static int value_object(Sink *sink, PyObject *v) {
    if (PyList_CheckExact(v)) return add((ValueSink *)sink, PyList_GetSlice(v, 0, PY_SSIZE_T_MAX));
    if (PyDict_CheckExact(v)) return add((ValueSink *)sink, PyDict_Copy(v));
    return add((ValueSink *)sink, Py_NewRef(v));
}

void value_sink_init(ValueSink *s, State *st) {
    *s = (ValueSink){{value_open, value_close, value_field_key, value_key, value_str, value_b64, value_integer,
                      value_number, value_literal, value_object},
                     st, NULL, NULL, 0, NULL, 0, 0};
}

void value_sink_free(ValueSink *s) {
    Py_CLEAR(s->root);
    if (s->owned) Py_CLEAR(s->key);
    PyMem_Free(s->stack);
}
