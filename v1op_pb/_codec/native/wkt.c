/* The well-known types whose JSON form is not an object of their fields (wkt.py's units),
 * as JSON values both ways: Struct/Value/ListValue and the wrappers here, and the dispatch
 * to Timestamp, Duration and FieldMask (wkt_time.c) and Any (wkt_any.c).
 */
#include "native.h"
#include <math.h>
#include <string.h>


/* --- Struct, Value, ListValue ------------------------------------------------------------ */

static int parse_value(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth);

static int parse_list_value(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth) {
    if (!PyList_CheckExact(v)) return DECLINE;
    Table *value_table = t->fields[0].sub;
    int rc = OK;
    Py_INCREF(v);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v) && rc == OK; i++) {
        if (depth + 1 > MAX_DEPTH) {
            rc = DECLINE;
            break;
        }
        PyObject *item = Py_NewRef(PyList_GET_ITEM(v, i));
        if (buf_tag(b, 1, 2) != OK) {
            rc = ERR;
        } else {
            Py_ssize_t start = buf_open(b);
            rc = parse_value(ctx, b, value_table, item, depth + 1);
            if (rc == OK) rc = buf_close(b, start);
        }
        Py_DECREF(item);
    }
    Py_DECREF(v);
    return rc;
}

/* Value: t is Value's table; fields by number: 1 null_value, 2 number_value,
 * 3 string_value, 4 bool_value, 5 struct_value, 6 list_value. */
static Table *value_sub(Table *t, uint32_t number) {
    for (int i = 0; i < t->nfields; i++)
        if (t->fields[i].number == number) return t->fields[i].sub;
    return NULL;
}

static int parse_value(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth) {
    if (depth > MAX_DEPTH) return DECLINE;
    if (v == Py_None) {
        if (buf_tag(b, 1, 0) != OK || buf_varint(b, 0) != OK) return ERR;
        return OK;
    }
    if (PyUnicode_CheckExact(v)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
            PyErr_Clear();
            return DECLINE;
        }
        if (buf_tag(b, 3, 2) != OK || buf_varint(b, (uint64_t)n) != OK || buf_raw(b, s, n) != OK)
            return ERR;
        return OK;
    }
    if (v == Py_True || v == Py_False) {
        if (buf_tag(b, 4, 0) != OK || buf_varint(b, v == Py_True) != OK) return ERR;
        return OK;
    }
    if (PyFloat_CheckExact(v) || PyLong_CheckExact(v)) {
        double d;
        if (PyFloat_CheckExact(v)) {
            d = PyFloat_AS_DOUBLE(v);
        } else {
            d = PyLong_AsDouble(v);
            if (d == -1.0 && PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return ERR;
                PyErr_Clear();
                return DECLINE;
            }
        }
        if (!isfinite(d)) return DECLINE; /* NaN too: the Python codec decides */
        uint64_t bits;
        memcpy(&bits, &d, 8);
        if (buf_tag(b, 2, 1) != OK || buf_fixed64(b, bits) != OK) return ERR;
        return OK;
    }
    int number;
    if (PyDict_CheckExact(v)) number = 5;
    else if (PyList_CheckExact(v)) number = 6;
    else return DECLINE;
    if (depth + 1 > MAX_DEPTH) return DECLINE;
    Table *sub = value_sub(t, (uint32_t)number);
    if (sub == NULL) return DECLINE;
    if (buf_tag(b, (uint32_t)number, 2) != OK) return ERR;
    Py_ssize_t start = buf_open(b);
    int rc = number == 5 ? parse_message(ctx, b, sub, v, depth + 1, 0)
                         : parse_list_value(ctx, b, sub, v, depth + 1);
    if (rc != OK) return rc;
    return buf_close(b, start);
}

/* Struct's entries, sorted by key, each a Value at depth + 2. */
static int parse_struct_fields(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth);

int parse_wkt(Ctx *ctx, Buf *b, Table *t, PyObject *value, int depth) {
    switch (t->wkt) {
    case W_TIMESTAMP: return parse_timestamp(b, value);
    case W_DURATION: return parse_duration(b, value);
    case W_FIELD_MASK: return parse_field_mask(b, value);
    case W_STRUCT: return parse_struct_fields(ctx, b, t, value, depth);
    case W_LIST_VALUE: return parse_list_value(ctx, b, t, value, depth);
    case W_VALUE: return parse_value(ctx, b, t, value, depth);
    case W_WRAPPER:
        return parse_scalar(ctx, b, &t->fields[0], value, 0, 0);
    case W_ANY: return parse_any(ctx, b, value, depth);
    default: return DECLINE;
    }
}

typedef struct {
    PyObject *key, *item;
    const char *s;
    Py_ssize_t n;
} KeyItem;

static int cmp_key(const void *a, const void *b) {
    const KeyItem *x = a, *y = b;
    return map_order_str(x->s, x->n, y->s, y->n);
}

static int parse_struct_fields(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth) {
    if (!PyDict_CheckExact(v)) return DECLINE;
    Py_ssize_t n = PyDict_GET_SIZE(v);
    if (n == 0) return OK;
    if (depth + 2 > MAX_DEPTH) return DECLINE;
    Table *value_table = t->fields[0].sub->fields[1].sub;
    KeyItem *items = PyMem_Calloc((size_t)n, sizeof(KeyItem));
    if (items == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    Py_ssize_t pos = 0, count = 0;
    PyObject *key, *item;
    int rc = OK;
    while (count < n && PyDict_Next(v, &pos, &key, &item)) {
        KeyItem *e = &items[count++];
        e->key = Py_NewRef(key);
        e->item = Py_NewRef(item);
        if (!PyUnicode_CheckExact(key)) {
            rc = DECLINE;
            break;
        }
        e->s = PyUnicode_AsUTF8AndSize(key, &e->n);
        if (e->s == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) rc = ERR;
            else {
                PyErr_Clear();
                rc = DECLINE;
            }
            break;
        }
    }
    if (rc == OK) {
        qsort(items, (size_t)count, sizeof(KeyItem), cmp_key);
        for (Py_ssize_t i = 0; i < count && rc == OK; i++) {
            Py_ssize_t entry, inner;
            if (buf_tag(b, 1, 2) != OK) {
                rc = ERR;
                break;
            }
            entry = buf_open(b);
            if (buf_tag(b, 1, 2) != OK || buf_varint(b, (uint64_t)items[i].n) != OK ||
                buf_raw(b, items[i].s, items[i].n) != OK || buf_tag(b, 2, 2) != OK) {
                rc = ERR;
                break;
            }
            inner = buf_open(b);
            rc = parse_value(ctx, b, value_table, items[i].item, depth + 2);
            if (rc == OK) rc = buf_close(b, inner);
            if (rc == OK) rc = buf_close(b, entry);
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_XDECREF(items[i].key);
        Py_XDECREF(items[i].item);
    }
    PyMem_Free(items);
    return rc;
}

/* --- emitting ------------------------------------------------------------------------------ */

/* The fields of a message read as a regular message (into a fresh dict), for the units that
 * are built from their fields' JSON values. */
static int emit_plain(Ctx *ctx, Table *t, const uint8_t *p, Py_ssize_t n, int depth,
                      int emit_unpopulated, PyObject **fields) {
    Ctx plain = *ctx;
    plain.emit_unpopulated = emit_unpopulated;
    plain.omit_output_only = 0;
    PyObject *dict = PyDict_New();
    if (dict == NULL) return ERR;
    PyObject *ignored = NULL;
    int rc = emit_message(&plain, t, p, n, depth, &ignored, dict);
    Py_XDECREF(ignored);
    if (rc != OK) {
        Py_DECREF(dict);
        return rc;
    }
    *fields = dict;
    return OK;
}

/* The one value of a dict of at most one key (or NULL when empty), a new reference. */
static PyObject *only_value(PyObject *dict) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    if (PyDict_Next(dict, &pos, &key, &value)) return Py_NewRef(value);
    return NULL;
}

static int emit_value(const uint8_t *p, Py_ssize_t n, int depth, PyObject **out);

/* A Struct from its entries (key 1, Value 2), sorted by key (maps.c). */
static int emit_struct(const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    if (depth > MAX_DEPTH) return DECLINE;
    MapList m = {0};
    int rc = struct_entries(p, n, &m);
    PyObject *dict = NULL;
    if (rc == OK && (dict = PyDict_New()) == NULL) rc = ERR;
    for (Py_ssize_t i = 0; i < m.n && rc == OK; i++) {
        const MapEntry *e = &m.items[i];
        PyObject *key = PyUnicode_DecodeUTF8((const char *)e->key, e->key_n, NULL), *value;
        if (key == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                rc = DECLINE;
            } else {
                rc = ERR;
            }
            break;
        }
        if (e->has_value)
            rc = emit_value(e->value, e->value_end - e->value, depth + 2, &value);
        else
            rc = emit_value(p, 0, depth + 2, &value);
        if (rc == OK) {
            if (PyDict_SetItem(dict, key, value) < 0) rc = ERR;
            Py_DECREF(value);
        }
        Py_DECREF(key);
    }
    map_list_free(&m);
    if (rc != OK) {
        Py_XDECREF(dict);
        return rc;
    }
    *out = dict;
    return OK;
}

static int emit_list_value(const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    if (depth > MAX_DEPTH) return DECLINE;
    PyObject *list = PyList_New(0);
    if (list == NULL) return ERR;
    Rd r = {p, p + n};
    int rc = OK;
    while (r.p < r.end && rc == OK) {
        uint64_t tag, len;
        if (rd_varint(&r, &tag) != OK || tag != ((1 << 3) | 2) || rd_varint(&r, &len) != OK ||
            len > (uint64_t)(r.end - r.p)) {
            rc = DECLINE;
            break;
        }
        PyObject *item = NULL;
        rc = emit_value(r.p, (Py_ssize_t)len, depth + 1, &item);
        r.p += len;
        if (rc == OK) {
            if (PyList_Append(list, item) < 0) rc = ERR;
            Py_DECREF(item);
        }
    }
    if (rc != OK) {
        Py_DECREF(list);
        return rc;
    }
    *out = list;
    return OK;
}

/* A Value: the kind set last (1 null, 2 number, 3 string, 4 bool, 5 struct, 6 list), as
 * wkt._encode_value writes it; a number that is not finite has no JSON form there, and a
 * struct or list given twice would merge: both are left to the Python codec. */
static int emit_value(const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    if (depth > MAX_DEPTH) return DECLINE;
    Rd r = {p, p + n};
    PyObject *value = NULL;
    int kind = 0, rc = OK, null_not_zero = 0;
    while (r.p < r.end && rc == OK) {
        uint64_t tag, v;
        if (rd_varint(&r, &tag) != OK) {
            rc = DECLINE;
            break;
        }
        uint64_t number = tag >> 3;
        int wt = (int)(tag & 7);
        PyObject *item = NULL;
        if ((number == 1 || number == 4) && wt == 0) {
            if (rd_varint(&r, &v) != OK) {
                rc = DECLINE;
                break;
            }
            /* null_value other than NULL_VALUE (0) has no JSON form: the Python codec says so */
            null_not_zero = number == 1 && (uint32_t)v != 0;
            item = Py_NewRef(number == 1 ? Py_None : (v ? Py_True : Py_False));
        } else if (number == 2 && wt == 1) {
            if (r.end - r.p < 8) {
                rc = DECLINE;
                break;
            }
            uint64_t bits = 0;
            for (int i = 7; i >= 0; i--) bits = (bits << 8) | r.p[i];
            r.p += 8;
            double d;
            memcpy(&d, &bits, 8);
            item = PyFloat_FromDouble(d);
            if (item == NULL) rc = ERR;
        } else if (number >= 3 && number <= 6 && number != 4 && wt == 2) {
            if (rd_varint(&r, &v) != OK || v > (uint64_t)(r.end - r.p)) {
                rc = DECLINE;
                break;
            }
            const uint8_t *q = r.p;
            r.p += v;
            if (number == 3) {
                item = PyUnicode_DecodeUTF8((const char *)q, (Py_ssize_t)v, NULL);
                if (item == NULL) {
                    if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                        PyErr_Clear();
                        rc = DECLINE;
                    } else {
                        rc = ERR;
                    }
                }
            } else if ((int)number == kind) {
                rc = DECLINE;
            } else if (number == 5) {
                rc = emit_struct(q, (Py_ssize_t)v, depth + 1, &item);
            } else {
                rc = emit_list_value(q, (Py_ssize_t)v, depth + 1, &item);
            }
        } else {
            rc = DECLINE;
        }
        if (rc == OK) {
            Py_XSETREF(value, item);
            kind = (int)number;
        }
    }
    if (rc == OK && kind == 2 && !isfinite(PyFloat_AS_DOUBLE(value))) rc = DECLINE;
    if (rc == OK && kind == 1 && null_not_zero) rc = DECLINE;
    if (rc != OK) {
        Py_XDECREF(value);
        return rc;
    }
    *out = value ? value : Py_NewRef(Py_None); /* no kind: null, as json_format writes it */
    return OK;
}

int emit_wkt(Ctx *ctx, Table *t, const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    if (depth > MAX_DEPTH) return DECLINE;
    PyObject *fields = NULL;
    int rc;
    switch (t->wkt) {
    case W_TIMESTAMP: return emit_timestamp(p, n, out);
    case W_DURATION: return emit_duration(p, n, out);
    case W_FIELD_MASK: return emit_field_mask(p, n, out);
    case W_ANY: return emit_any(ctx, p, n, depth, out);
    case W_STRUCT: return emit_struct(p, n, depth, out);
    case W_LIST_VALUE: return emit_list_value(p, n, depth, out);
    case W_VALUE: return emit_value(p, n, depth, out);
    case W_WRAPPER:
        /* {"value": v} as a regular message, with the default when absent */
        rc = emit_plain(ctx, t, p, n, depth, 1, &fields);
        if (rc != OK) return rc;
        *out = only_value(fields);
        Py_DECREF(fields);
        if (*out == NULL) return DECLINE;
        return OK;
    default:
        return DECLINE;
    }
}
