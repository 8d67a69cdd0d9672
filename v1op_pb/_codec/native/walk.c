/* The Python-value source of parse.c: a walk over what json.loads, orjson or a caller made
 * (from_dict), one value at a time. Exact types only: dict, list, str, int, float, True,
 * False and None; anything else (tuples, subclasses such as jsontext.DuplicateKeys, other
 * objects) declines, and the Python codec says what it makes of it.
 *
 * Containers being walked and the value to be read next are held by strong references:
 * resolving an Any's type may run Python code while the walk is under way.
 */
#include "native.h"

static int utf8_of(PyObject *v, Ev *ev) {
    if (PyUnicode_IS_COMPACT_ASCII(v)) { /* most keys and strings: their own bytes */
        ev->s = (const char *)PyUnicode_DATA(v);
        ev->n = PyUnicode_GET_LENGTH(v);
    } else {
        ev->s = PyUnicode_AsUTF8AndSize(v, &ev->n);
    }
    if (ev->s == NULL) { /* surrogates: the Python codec words the error */
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
        PyErr_Clear();
        return DECLINE;
    }
    ev->kind = K_STRING;
    ev->ascii = PyUnicode_IS_ASCII(v);
    ev->obj = v;
    return OK;
}

static int integer(PyObject *v, Ev *ev) {
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) return ERR;
    ev->kind = K_INT;
    ev->neg = overflow ? overflow < 0 : x < 0;
    ev->big = 0;
    ev->obj = v;
    if (!overflow) {
        ev->mag = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
        return OK;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(v);
        if (u != (unsigned long long)-1 || !PyErr_Occurred()) {
            ev->mag = u;
            return OK;
        }
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return ERR;
        PyErr_Clear();
    }
    ev->big = 1;
    ev->d = PyLong_AsDouble(v);
    if (ev->d == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return ERR;
        PyErr_Clear();
        return DECLINE; /* beyond a double: the Python codec says so */
    }
    return OK;
}

static int walk_value(Src *src, Ev *ev) {
    Walk *w = (Walk *)src;
    PyObject *v = w->pending;
    ev->obj = v;
    if (v == NULL) return DECLINE;
    if (PyUnicode_CheckExact(v)) return utf8_of(v, ev);
    if (PyLong_CheckExact(v)) return integer(v, ev);
    if (PyFloat_CheckExact(v)) {
        ev->kind = K_FLOAT;
        ev->d = PyFloat_AS_DOUBLE(v);
    } else if (v == Py_True || v == Py_False || v == Py_None) {
        ev->kind = v == Py_True ? K_TRUE : v == Py_False ? K_FALSE : K_NULL;
    } else if (PyDict_CheckExact(v) || PyList_CheckExact(v)) {
        ev->kind = PyDict_CheckExact(v) ? K_OBJECT : K_ARRAY;
        if (vec_reserve((void **)&w->frames, &w->cap, w->n + 1, sizeof(Frame)) != OK) return ERR;
        w->frames[w->n++] = (Frame){v, 0}; /* the pending reference moves to the frame */
        w->pending = NULL;
    } else {
        return DECLINE;
    }
    return OK;
}

static void pop(Walk *w) { Py_DECREF(w->frames[--w->n].container); }

static int walk_member(Src *src, Ev *key, int *more) {
    Walk *w = (Walk *)src;
    Frame *f = &w->frames[w->n - 1];
    PyObject *k, *v;
    *more = PyDict_Next(f->container, &f->pos, &k, &v);
    if (!*more) {
        pop(w);
        return OK;
    }
    if (!PyUnicode_CheckExact(k)) return DECLINE;
    Py_XSETREF(w->pending, Py_NewRef(v));
    return utf8_of(k, key);
}

static int walk_item(Src *src, int *more) {
    Walk *w = (Walk *)src;
    Frame *f = &w->frames[w->n - 1];
    *more = f->pos < PyList_GET_SIZE(f->container); /* a list may change size under us */
    if (!*more) {
        pop(w);
        return OK;
    }
    Py_XSETREF(w->pending, Py_NewRef(PyList_GET_ITEM(f->container, f->pos++)));
    return OK;
}

static int walk_skip(Src *src) {
    Py_CLEAR(((Walk *)src)->pending);
    return OK;
}

static int walk_find_type(Src *src, Ev *url, int *taken) {
    Walk *w = (Walk *)src;
    *taken = 0;
    PyObject *dict = w->frames[w->n - 1].container;
    url->kind = K_NULL;
    if (PyDict_GET_SIZE(dict) == 0) return OK;
    PyObject *found = PyDict_GetItemWithError(dict, w->s_type);
    if (found == NULL) return PyErr_Occurred() ? ERR : DECLINE;
    return PyUnicode_CheckExact(found) ? utf8_of(found, url) : DECLINE;
}

void walk_init(Walk *w, PyObject *root, PyObject *s_type) {
    *w = (Walk){{walk_value, walk_member, walk_item, walk_skip, walk_find_type},
                Py_NewRef(root), NULL, 0, 0, s_type};
}

void walk_free(Walk *w) {
    Py_CLEAR(w->pending);
    while (w->n) pop(w);
    PyMem_Free(w->frames);
}
