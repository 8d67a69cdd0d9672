/* Any, both ways: its type URL resolved through the registry in use (the registry's URL
 * cache and the class -> table dict answer in C; a miss calls back into Python), its
 * payload packed as the Python codec packs it, and read back from the wire.
 */
#include "native.h"
#include <string.h>

/* --- Any --------------------------------------------------------------------------------- */

Table *resolve_type(Ctx *ctx, PyObject *url, int *outcome) {
    PyObject *found = NULL;
    if (ctx->by_url != NULL) {
        /* What wkt.resolve_type looks at first: the registry's own cache of URLs. A URL
         * there whose class has a table needs no call into Python. */
        PyObject *cls = PyDict_GetItemWithError(ctx->by_url, url);
        if (cls != NULL) found = PyDict_GetItemWithError(ctx->tables, cls);
        if (found == NULL && PyErr_Occurred()) {
            *outcome = ERR;
            return NULL;
        }
        Py_XINCREF(found);
    }
    if (found == NULL) found = PyObject_CallOneArg(ctx->resolver, url);
    if (found == NULL) {
        *outcome = ERR;
        return NULL;
    }
    if (!PyObject_TypeCheck(found, &TableType)) {
        Py_DECREF(found);
        *outcome = DECLINE; /* a type the registry does not know, or a malformed URL */
        return NULL;
    }
    Table *t = (Table *)found;
    if ((t->flags & (TF_UNSUPPORTED | TF_HAS_REQUIRED)) || !t->ready) {
        Py_DECREF(found);
        *outcome = DECLINE;
        return NULL;
    }
    *outcome = OK;
    return t;
}

/* cls.FromString(payload).SerializeToString(deterministic=True), as bytes in *out. */
static int repack(Table *inner, Buf *payload, PyObject **out) {
    if (inner->cls == NULL || inner->cls == Py_None) return DECLINE;
    PyObject *data = PyBytes_FromStringAndSize(payload->data, payload->len);
    if (data == NULL) return ERR;
    PyObject *message = PyObject_CallMethodOneArg(inner->cls, C.s_fromstring, data);
    Py_DECREF(data);
    if (message == NULL) { /* e.g. required fields: the Python codec says what is wrong */
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) return ERR;
        PyErr_Clear();
        return DECLINE;
    }
    PyObject *serialize = PyObject_GetAttr(message, C.s_serialize);
    Py_DECREF(message);
    if (serialize == NULL) return ERR;
    PyObject *kwargs = Py_BuildValue("{O:O}", C.s_deterministic, Py_True);
    PyObject *no_args = PyTuple_New(0);
    PyObject *result = kwargs && no_args ? PyObject_Call(serialize, no_args, kwargs) : NULL;
    Py_XDECREF(kwargs);
    Py_XDECREF(no_args);
    Py_DECREF(serialize);
    if (result == NULL) return ERR;
    if (!PyBytes_Check(result)) {
        Py_DECREF(result);
        return DECLINE;
    }
    *out = result;
    return OK;
}

/* The Any's fields: its URL (n bytes at url) and the payload of type inner written in
 * payload, packed as the Python codec packs it. */
int write_any(Ctx *ctx, Buf *b, Table *inner, const char *url, Py_ssize_t n, Buf *payload) {
    PyObject *repacked = NULL;
    int rc = OK;
    if (ctx->repack_maps && (inner->flags & TF_HAS_MAPS) && payload->len) {
        /* This runtime orders map entries otherwise than the core does: have it write the
         * payload, as the Python codec has it written (SerializeToString(deterministic)). */
        rc = repack(inner, payload, &repacked);
    }
    const char *packed = repacked ? PyBytes_AS_STRING(repacked) : payload->data;
    Py_ssize_t packed_len = repacked ? PyBytes_GET_SIZE(repacked) : payload->len;
    if (rc == OK) {
        if (buf_tag(b, 1, 2) != OK || buf_varint(b, (uint64_t)n) != OK ||
            buf_raw(b, url, n) != OK)
            rc = ERR;
    }
    if (rc == OK && packed_len) {
        if (buf_tag(b, 2, 2) != OK || buf_varint(b, (uint64_t)packed_len) != OK ||
            buf_raw(b, packed, packed_len) != OK)
            rc = ERR;
    }
    Py_XDECREF(repacked);
    return rc;
}

int parse_any(Ctx *ctx, Buf *b, PyObject *v, int depth) {
    if (!PyDict_CheckExact(v)) return DECLINE;
    if (PyDict_GET_SIZE(v) == 0) return OK; /* {}: the empty Any */
    PyObject *url = PyDict_GetItemWithError(v, C.s_type);
    if (url == NULL) return PyErr_Occurred() ? ERR : DECLINE;
    if (!PyUnicode_CheckExact(url)) return DECLINE;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(url, &n);
    if (s == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
        PyErr_Clear();
        return DECLINE;
    }
    Py_INCREF(url);
    Py_INCREF(v);
    int rc;
    Table *inner = resolve_type(ctx, url, &rc);
    Buf payload = {0};
    if (rc == OK) {
        if (inner->wkt != W_NONE) {
            PyObject *value = PyDict_GetItemWithError(v, C.s_value);
            if (value == NULL) rc = PyErr_Occurred() ? ERR : DECLINE;
            else if (PyDict_GET_SIZE(v) != 2 || depth + 1 > MAX_DEPTH) rc = DECLINE;
            else rc = parse_message(ctx, &payload, inner, value, depth + 1, 0);
        } else {
            rc = parse_message(ctx, &payload, inner, v, depth + 1, 1);
        }
    }
    if (rc == OK) rc = write_any(ctx, b, inner, s, n, &payload);
    Py_XDECREF(inner);
    buf_free(&payload);
    Py_DECREF(url);
    Py_DECREF(v);
    return rc;
}

/* An Any's wire bytes: its type URL (field 1) and value (field 2), each at most once in
 * effect (the last wins, as a parse would have it); anything else declines. */
int any_parts(const uint8_t *p, Py_ssize_t n, Span *url, Span *value) {
    Rd r = {p, p + n};
    *url = (Span){NULL, 0};
    *value = (Span){NULL, 0};
    while (r.p < r.end) {
        uint64_t tag, len;
        if (rd_varint1(&r, &tag) != OK || (tag & 7) != 2 || rd_varint1(&r, &len) != OK ||
            len > (uint64_t)(r.end - r.p))
            return DECLINE;
        if (tag >> 3 == 1) {
            *url = (Span){r.p, (Py_ssize_t)len};
        } else if (tag >> 3 == 2) {
            *value = (Span){r.p, (Py_ssize_t)len};
        } else {
            return DECLINE;
        }
        r.p += len;
    }
    return OK;
}

/* The type URL as a str, or NULL: with *rc DECLINE when it is not UTF-8 (the Python codec
 * reports it), ERR with an exception set otherwise. */
PyObject *any_url(Span url, int *rc) {
    PyObject *type_url = PyUnicode_DecodeUTF8((const char *)url.p, url.n, NULL);
    *rc = OK;
    if (type_url == NULL) {
        *rc = ERR;
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            *rc = DECLINE;
        }
    }
    return type_url;
}

int emit_any(Ctx *ctx, const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    Span url_span, value_span;
    if (any_parts(p, n, &url_span, &value_span) != OK) return DECLINE;
    const uint8_t *value = value_span.p;
    Py_ssize_t value_n = value_span.n;
    if (url_span.n == 0) {
        if (value_n) return DECLINE;
        *out = PyDict_New();
        return *out ? OK : ERR;
    }
    int url_rc;
    PyObject *type_url = any_url(url_span, &url_rc);
    if (type_url == NULL) return url_rc;
    int rc;
    Table *inner = resolve_type(ctx, type_url, &rc);
    if (rc != OK) {
        Py_DECREF(type_url);
        return rc;
    }
    PyObject *dict = NULL;
    if (rc == OK) {
        dict = PyDict_New();
        if (dict == NULL || PyDict_SetItem(dict, C.s_type, type_url) < 0) rc = ERR;
    }
    if (rc == OK) {
        if (inner->wkt != W_NONE) {
            PyObject *v = NULL;
            rc = emit_message(ctx, inner, value ? value : (const uint8_t *)"", value_n,
                              depth + 1, &v, NULL);
            if (rc == OK) {
                if (PyDict_SetItem(dict, C.s_value, v) < 0) rc = ERR;
                Py_DECREF(v);
            }
        } else {
            PyObject *ignored = NULL;
            rc = emit_message(ctx, inner, value ? value : (const uint8_t *)"", value_n,
                              depth + 1, &ignored, dict);
            Py_XDECREF(ignored);
        }
    }
    Py_DECREF(inner);
    Py_DECREF(type_url);
    if (rc != OK) {
        Py_XDECREF(dict);
        return rc;
    }
    *out = dict;
    return OK;
}
