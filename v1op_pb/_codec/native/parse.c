/* JSON value -> binary wire form, driven by a Table.
 *
 * Fields are written in number order and map entries sorted by key, as a deterministic
 * protobuf serializer writes them, so that the bytes an Any packs equal what the Python
 * codec packs (SerializeToString(deterministic=True)). Every check mirrors the Python
 * decoder (decode.py, scalars.py); where the Python codec would refuse, or where this core
 * is unsure, it declines.
 */
#include "native.h"
#include <math.h>
#include <string.h>

/* --- scalars ----------------------------------------------------------------------------- */

typedef struct {
    uint64_t bits;           /* varint or fixed value, as written */
    const char *s;           /* string contents (borrowed from the str object) */
    Py_ssize_t n;
    PyObject *text;          /* bytes fields: the base64 text */
} Scalar;

static int wire_type_of(int type) {
    switch (type) {
    case T_DOUBLE: case T_FIXED64: case T_SFIXED64: return 1;
    case T_FLOAT: case T_FIXED32: case T_SFIXED32: return 5;
    case T_STRING: case T_BYTES: case T_MESSAGE: return 2;
    default: return 0;
    }
}

/* Digits (optionally signed) of an exact str as an integer; DECLINE when not plain. */
static int integer_text(PyObject *v, int is_signed, int64_t *si, uint64_t *ui) {
    Py_ssize_t n;
    if (!PyUnicode_IS_ASCII(v)) return DECLINE;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s == NULL) return ERR;
    int negative = 0;
    Py_ssize_t i = 0;
    if (n > 0 && s[0] == '-') {
        negative = 1;
        i = 1;
    }
    if (i == n || n - i > 20) return DECLINE;
    uint64_t acc = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return DECLINE;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (acc > (UINT64_MAX - digit) / 10) return DECLINE;
        acc = acc * 10 + digit;
    }
    if (negative) {
        if (!is_signed) {
            if (acc != 0) return DECLINE;
            *ui = 0;
            return OK;
        }
        if (acc > (uint64_t)INT64_MAX + 1) return DECLINE;
        *si = (int64_t)(0 - acc);
        return OK;
    }
    if (is_signed) {
        if (acc > (uint64_t)INT64_MAX) return DECLINE;
        *si = (int64_t)acc;
    } else {
        *ui = acc;
    }
    return OK;
}

/* An integer field's value, as scalars._integer_decoder reads it. */
static int to_integer(PyObject *v, int is_signed, int64_t lo, int64_t hi, uint64_t uhi,
                      uint64_t *out) {
    int64_t si = 0;
    uint64_t ui = 0;
    if (PyLong_CheckExact(v)) {
        if (is_signed) {
            int overflow;
            long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (x == -1 && PyErr_Occurred()) return ERR;
            if (overflow) return DECLINE;
            si = x;
        } else {
            /* negative or too large: OverflowError */
            unsigned long long x = PyLong_AsUnsignedLongLong(v);
            if (x == (unsigned long long)-1 && PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return ERR;
                PyErr_Clear();
                return DECLINE;
            }
            ui = x;
        }
    } else if (PyFloat_CheckExact(v)) {
        double d = PyFloat_AS_DOUBLE(v);
        if (!isfinite(d) || d != floor(d)) return DECLINE;
        if (is_signed) {
            if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return DECLINE;
            si = (int64_t)d;
        } else {
            if (!(d >= 0.0 && d < 18446744073709551616.0)) return DECLINE;
            ui = (uint64_t)d;
        }
    } else if (PyUnicode_CheckExact(v)) {
        int rc = integer_text(v, is_signed, &si, &ui);
        if (rc != OK) return rc;
    } else {
        return DECLINE; /* bool, None, containers, subclasses: the Python codec decides */
    }
    if (is_signed) {
        if (si < lo || si > hi) return DECLINE;
        *out = (uint64_t)si;
    } else {
        if (ui > uhi) return DECLINE;
        *out = ui;
    }
    return OK;
}

/* -?digits(.digits)?([eE][+-]?digits)? : what scalars._NUMBER_TEXT admits. */
static int number_text(const char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    if (i < n && s[i] == '-') i++;
    Py_ssize_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == start) return 0;
    if (i < n && s[i] == '.') {
        i++;
        start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == start) return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == start) return 0;
    }
    return i == n;
}

/* A float or double field's value, as scalars._float_decoder reads it. */
static int to_double(PyObject *v, int single, double *out) {
    double d;
    if (PyFloat_CheckExact(v)) {
        d = PyFloat_AS_DOUBLE(v);
    } else if (PyLong_CheckExact(v)) {
        d = PyLong_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return ERR;
            PyErr_Clear();
            return DECLINE;
        }
    } else if (PyUnicode_CheckExact(v)) {
        Py_ssize_t n;
        if (!PyUnicode_IS_ASCII(v)) return DECLINE;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s == NULL) return ERR;
        if (n == 3 && memcmp(s, "NaN", 3) == 0) {
            *out = Py_NAN;
            return OK;
        }
        if (n == 8 && memcmp(s, "Infinity", 8) == 0) {
            *out = Py_HUGE_VAL;
            return OK;
        }
        if (n == 9 && memcmp(s, "-Infinity", 9) == 0) {
            *out = -Py_HUGE_VAL;
            return OK;
        }
        if (!number_text(s, n)) return DECLINE;
        d = PyOS_string_to_double(s, NULL, NULL);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return DECLINE;
        }
    } else {
        return DECLINE;
    }
    if (isinf(d)) return DECLINE;
    if (single && !isnan(d) && isinf((float)d)) return DECLINE;
    *out = d;
    return OK;
}

/* The value of field f (its element, for a repeated field) as written on the wire. */
static int to_scalar(const Field *f, PyObject *v, Scalar *out) {
    int rc;
    switch (f->type) {
    case T_INT32: case T_SINT32: case T_SFIXED32:
        return to_integer(v, 1, INT32_MIN, INT32_MAX, 0, &out->bits);
    case T_INT64: case T_SINT64: case T_SFIXED64:
        return to_integer(v, 1, INT64_MIN, INT64_MAX, 0, &out->bits);
    case T_UINT32: case T_FIXED32:
        return to_integer(v, 0, 0, 0, UINT32_MAX, &out->bits);
    case T_UINT64: case T_FIXED64:
        return to_integer(v, 0, 0, 0, UINT64_MAX, &out->bits);
    case T_DOUBLE: {
        double d;
        rc = to_double(v, 0, &d);
        if (rc != OK) return rc;
        memcpy(&out->bits, &d, 8);
        return OK;
    }
    case T_FLOAT: {
        double d;
        rc = to_double(v, 1, &d);
        if (rc != OK) return rc;
        float x = (float)d;
        uint32_t b;
        memcpy(&b, &x, 4);
        out->bits = b;
        return OK;
    }
    case T_BOOL:
        if (v == Py_True) out->bits = 1;
        else if (v == Py_False) out->bits = 0;
        else return DECLINE;
        return OK;
    case T_STRING:
        if (!PyUnicode_CheckExact(v)) return DECLINE;
        out->s = PyUnicode_AsUTF8AndSize(v, &out->n);
        if (out->s == NULL) { /* an unpaired surrogate: the Python codec words it */
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
            PyErr_Clear();
            return DECLINE;
        }
        out->bits = (uint64_t)out->n;
        return OK;
    case T_BYTES:
        if (!PyUnicode_CheckExact(v) || !PyUnicode_IS_ASCII(v)) return DECLINE;
        out->text = v;
        out->s = PyUnicode_AsUTF8AndSize(v, &out->n);
        if (out->s == NULL) return ERR;
        /* decoded when written; empty text is the only text that decodes to nothing */
        out->bits = (uint64_t)out->n;
        return OK;
    case T_ENUM: {
        long number;
        if (PyUnicode_CheckExact(v)) {
            PyObject *found = PyDict_GetItemWithError(f->enum_numbers, v);
            if (found == NULL) return PyErr_Occurred() ? ERR : DECLINE;
            number = PyLong_AsLong(found);
        } else if (PyLong_CheckExact(v) || PyFloat_CheckExact(v)) {
            if (PyFloat_CheckExact(v)) {
                double d = PyFloat_AS_DOUBLE(v);
                if (!isfinite(d) || d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
                    return DECLINE;
                number = (long)d;
            } else {
                int overflow;
                long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
                if (x == -1 && PyErr_Occurred()) return ERR;
                if (overflow || x < INT32_MIN || x > INT32_MAX) return DECLINE;
                number = (long)x;
            }
            if (f->flags & F_ENUM_CLOSED) {
                PyObject *key = PyLong_FromLong(number);
                if (key == NULL) return ERR;
                PyObject *name = PyDict_GetItemWithError(f->enum_names, key);
                Py_DECREF(key);
                if (name == NULL) return PyErr_Occurred() ? ERR : DECLINE;
            }
        } else {
            return DECLINE;
        }
        out->bits = (uint64_t)(int64_t)number;
        return OK;
    }
    default:
        return DECLINE;
    }
}

static int is_default(const Field *f, const Scalar *s) {
    return s->bits == 0; /* numbers by their bits: -0.0 is written, as upb writes it */
}

/* Write one element's value (no tag); zigzag and sizes as the wire format has them. */
static int write_value(Buf *b, const Field *f, const Scalar *s) {
    switch (f->type) {
    case T_SINT32: {
        int32_t x = (int32_t)(int64_t)s->bits;
        return buf_varint(b, (uint32_t)(((uint32_t)x << 1) ^ (uint32_t)(x >> 31)));
    }
    case T_SINT64: {
        int64_t x = (int64_t)s->bits;
        return buf_varint(b, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
    }
    case T_FIXED32: case T_SFIXED32: case T_FLOAT:
        return buf_fixed32(b, (uint32_t)s->bits);
    case T_FIXED64: case T_SFIXED64: case T_DOUBLE:
        return buf_fixed64(b, s->bits);
    case T_STRING:
        if (buf_varint(b, (uint64_t)s->n) != OK) return ERR;
        return buf_raw(b, s->s, s->n);
    case T_BYTES: {
        Py_ssize_t start = buf_open(b);
        int rc = base64_decode_into(b, s->s, s->n);
        if (rc != OK) return rc;
        return buf_close(b, start);
    }
    default: /* int32 and enums sign-extend to ten bytes, as the wire format says */
        return buf_varint(b, s->bits);
    }
}

/* One scalar field (or element): tag and value. Implicit-presence fields holding their
 * default are not written unless force (map entries, oneof members, optional fields). */
int parse_scalar(Ctx *ctx, Buf *b, const Field *f, PyObject *v, int in_packed, int force) {
    (void)ctx;
    Scalar s = {0};
    int rc = to_scalar(f, v, &s);
    if (rc != OK) return rc;
    if (in_packed) return write_value(b, f, &s);
    if (!force && !(f->flags & F_PRESENCE) && is_default(f, &s)) {
        if (f->type != T_BYTES) return OK;
        /* bytes: the text may be non-empty and still need checking, e.g. "=" */
        Py_ssize_t mark = b->len;
        rc = write_value(b, f, &s);
        b->len = mark;
        return rc;
    }
    Py_ssize_t mark = b->len;
    if (buf_tag(b, f->number, wire_type_of(f->type)) != OK) return ERR;
    Py_ssize_t after_tag = b->len;
    rc = write_value(b, f, &s);
    if (rc != OK) return rc;
    if (!force && !(f->flags & F_PRESENCE) && f->type == T_BYTES && b->len == after_tag + 1)
        b->len = mark; /* decoded to no bytes: the default, not written */
    return OK;
}

/* --- messages ------------------------------------------------------------------------------ */

static int parse_sub(Ctx *ctx, Buf *b, const Field *f, PyObject *v, int depth) {
    if (buf_tag(b, f->number, 2) != OK) return ERR;
    Py_ssize_t start = buf_open(b);
    int rc = parse_message(ctx, b, f->sub, v, depth, 0);
    if (rc != OK) return rc;
    return buf_close(b, start);
}

static int is_sequence(PyObject *v) { return PyList_CheckExact(v) || PyTuple_CheckExact(v); }

static int parse_repeated(Ctx *ctx, Buf *b, const Field *f, PyObject *v, int depth) {
    if (!is_sequence(v)) return DECLINE;
    PyObject *seq = v;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int rc = OK;
    /* Hold the items: a registry call-back (an Any) runs Python code. */
    Py_INCREF(seq);
    if (f->type == T_MESSAGE) {
        int allow_null = f->sub->wkt == W_VALUE;
        for (Py_ssize_t i = 0; i < n && rc == OK; i++) {
            PyObject *item = items[i];
            if ((item == Py_None && !allow_null) || depth >= MAX_DEPTH) {
                rc = DECLINE;
                break;
            }
            Py_INCREF(item);
            rc = parse_sub(ctx, b, f, item, depth + 1);
            Py_DECREF(item);
            n = PySequence_Fast_GET_SIZE(seq);
            items = PySequence_Fast_ITEMS(seq);
        }
    } else if ((f->flags & F_PACKED) && n > 0) {
        if (buf_tag(b, f->number, 2) != OK) {
            rc = ERR;
        } else {
            Py_ssize_t start = buf_open(b);
            for (Py_ssize_t i = 0; i < n && rc == OK; i++)
                rc = items[i] == Py_None ? DECLINE : parse_scalar(ctx, b, f, items[i], 1, 1);
            if (rc == OK) rc = buf_close(b, start);
        }
    } else {
        for (Py_ssize_t i = 0; i < n && rc == OK; i++)
            rc = items[i] == Py_None ? DECLINE : parse_scalar(ctx, b, f, items[i], 0, 1);
    }
    Py_DECREF(seq);
    return rc;
}


/* The order protobuf's deterministic serializer (upb) writes map entries in, which the
 * Python codec's packed Any bytes have: strings by their bytes, a string before its own
 * prefixes ("ab" before "a", "" last); integers and bools by their 64-bit two's complement
 * pattern, descending (-1 first, 0 last). Found by experiment and pinned by the tests. */
int map_order_str(const char *a, Py_ssize_t an, const char *b, Py_ssize_t bn) {
    Py_ssize_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, (size_t)n) : 0;
    if (c) return c;
    return (an < bn) - (an > bn);
}
static int cmp_str(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    return map_order_str(x->s, x->n, y->s, y->n);
}
static int cmp_int(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    return (x->u < y->u) - (x->u > y->u);
}

/* A map key, read from its JSON string as scalars.decode_map_key reads it; only the
 * canonical spelling of a number is taken ("7", not "07" or "-0"), so that two keys never
 * name one entry. */
int map_key(const Field *kf, PyObject *key, Entry *e) {
    if (!PyUnicode_CheckExact(key)) return DECLINE;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(key, &n);
    if (s == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
        PyErr_Clear();
        return DECLINE;
    }
    e->s = s;
    e->n = n;
    switch (kf->type) {
    case T_STRING:
        return OK;
    case T_BOOL:
        if (n == 4 && memcmp(s, "true", 4) == 0) e->u = 1;
        else if (n == 5 && memcmp(s, "false", 5) == 0) e->u = 0;
        else return DECLINE;
        return OK;
    default: {
        if (n == 0) return DECLINE;
        Py_ssize_t digits = s[0] == '-' ? 1 : 0;
        if (digits == n || (s[digits] == '0' && n > digits + 1) || (digits && s[1] == '0'))
            return DECLINE;
        Scalar sc = {0};
        int rc = to_scalar(kf, key, &sc);
        if (rc != OK) return rc;
        e->i = (int64_t)sc.bits;
        e->u = sc.bits;
        return OK;
    }
    }
}

int write_map_key(Buf *b, const Field *kf, const Entry *e) {
    if (buf_tag(b, 1, wire_type_of(kf->type)) != OK) return ERR;
    Scalar s = {0};
    s.bits = kf->type == T_STRING ? (uint64_t)e->n : e->u;
    s.s = e->s;
    s.n = e->n;
    return write_value(b, kf, &s);
}

static int parse_map(Ctx *ctx, Buf *b, const Field *f, PyObject *v, int depth) {
    if (!PyDict_CheckExact(v)) return DECLINE;
    const Field *kf = &f->sub->fields[0], *vf = &f->sub->fields[1];
    Py_ssize_t n = PyDict_GET_SIZE(v);
    if (n == 0) return OK;
    Entry *entries = PyMem_Calloc((size_t)n, sizeof(Entry));
    if (entries == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    Py_ssize_t pos = 0, count = 0;
    PyObject *key, *item;
    int rc = OK;
    while (count < n && PyDict_Next(v, &pos, &key, &item)) {
        Entry *e = &entries[count++];
        e->key = Py_NewRef(key);
        e->item = Py_NewRef(item);
        rc = map_key(kf, key, e);
        if (rc != OK) break;
        if (item == Py_None && !(vf->type == T_MESSAGE && vf->sub->wkt == W_VALUE)) {
            rc = DECLINE;
            break;
        }
    }
    if (rc == OK) {
        int (*cmp)(const void *, const void *) = kf->type == T_STRING ? cmp_str : cmp_int;
        qsort(entries, (size_t)count, sizeof(Entry), cmp);
        for (Py_ssize_t i = 0; i < count && rc == OK; i++) {
            Entry *e = &entries[i];
            if (buf_tag(b, f->number, 2) != OK) {
                rc = ERR;
                break;
            }
            Py_ssize_t start = buf_open(b);
            rc = write_map_key(b, kf, e);
            if (rc != OK) break;
            if (vf->type == T_MESSAGE) {
                if (depth + 2 > MAX_DEPTH) {
                    rc = DECLINE;
                    break;
                }
                if (buf_tag(b, 2, 2) != OK) {
                    rc = ERR;
                    break;
                }
                Py_ssize_t inner = buf_open(b);
                rc = parse_message(ctx, b, vf->sub, e->item, depth + 2, 0);
                if (rc == OK) rc = buf_close(b, inner);
            } else {
                rc = parse_scalar(ctx, b, vf, e->item, 0, 1);
            }
            if (rc == OK) rc = buf_close(b, start);
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_XDECREF(entries[i].key);
        Py_XDECREF(entries[i].item);
    }
    PyMem_Free(entries);
    return rc;
}

/* A field given as JSON null: most fields stay unset; a Value holds null_value and a
 * NullValue enum field holds 0 (compile._null_statement). */
int parse_null(Ctx *ctx, Buf *b, const Field *f) {
    if (f->flags & F_REPEATED) return OK;
    if (f->type == T_MESSAGE && f->sub->wkt == W_VALUE) {
        if (buf_tag(b, f->number, 2) != OK || buf_varint(b, 2) != OK ||
            buf_tag(b, 1, 0) != OK || buf_varint(b, 0) != OK)
            return ERR;
        return OK;
    }
    if (f->type == T_ENUM && (f->flags & F_NULL_ENUM) && (f->flags & F_PRESENCE)) {
        if (buf_tag(b, f->number, 0) != OK || buf_varint(b, 0) != OK) return ERR;
    }
    return OK;
}

int sets_on_null(const Field *f) {
    if (f->flags & F_REPEATED) return 0;
    return (f->type == T_MESSAGE && f->sub->wkt == W_VALUE) ||
           (f->type == T_ENUM && (f->flags & F_NULL_ENUM));
}

static int parse_field(Ctx *ctx, Buf *b, const Field *f, PyObject *v, int depth) {
    if (v == Py_None) return parse_null(ctx, b, f);
    if (f->flags & F_MAP) return parse_map(ctx, b, f, v, depth);
    if (f->flags & F_REPEATED) return parse_repeated(ctx, b, f, v, depth);
    if (f->type == T_MESSAGE) {
        if (depth >= MAX_DEPTH) return DECLINE;
        return parse_sub(ctx, b, f, v, depth + 1);
    }
    return parse_scalar(ctx, b, f, v, 0, 0);
}

#define SMALL 32

int parse_message(Ctx *ctx, Buf *b, Table *t, PyObject *value, int depth, int skip_type) {
    if (depth > MAX_DEPTH || (t->flags & TF_UNSUPPORTED) || !t->ready) return DECLINE;
    if (t->wkt != W_NONE && !skip_type) return parse_wkt(ctx, b, t, value, depth);
    if (!PyDict_CheckExact(value)) return DECLINE; /* also DuplicateKeys, a dict subclass */
    PyObject *small[SMALL];
    uint64_t chosen = 0, null_set = 0;
    PyObject **slots = small;
    int nf = t->nfields;
    if (nf > SMALL) {
        slots = PyMem_Calloc((size_t)nf, sizeof(PyObject *));
        if (slots == NULL) {
            PyErr_NoMemory();
            return ERR;
        }
    } else {
        memset(small, 0, sizeof(small));
    }
    int rc = OK;
    Py_ssize_t pos = 0;
    PyObject *key, *item;
    while (PyDict_Next(value, &pos, &key, &item)) {
        if (!PyUnicode_CheckExact(key)) {
            rc = DECLINE;
            break;
        }
        PyObject *index = PyDict_GetItemWithError(t->keys, key);
        if (index == NULL) {
            if (PyErr_Occurred()) {
                rc = ERR;
                break;
            }
            if (skip_type && PyUnicode_Compare(key, C.s_type) == 0) continue;
            if (ctx->ignore_unknown && PyUnicode_GET_LENGTH(key) > 0 &&
                PyUnicode_READ_CHAR(key, 0) != '[')
                continue;
            rc = DECLINE; /* an unknown key or an extension */
            break;
        }
        Py_ssize_t i = PyLong_AsSsize_t(index);
        if (slots[i] != NULL) { /* given twice, by name and JSON name */
            rc = DECLINE;
            break;
        }
        const Field *f = &t->fields[i];
        if (f->oneof >= 0) {
            if (item == Py_None) {
                if (sets_on_null(f)) {
                    /* null sets this member without choosing it: with another member
                     * present, the order of the keys decides; leave that to Python */
                    uint64_t bit = (uint64_t)1 << f->oneof;
                    if (null_set & bit) {
                        rc = DECLINE;
                        break;
                    }
                    null_set |= bit;
                }
            } else {
                uint64_t bit = (uint64_t)1 << f->oneof;
                if (chosen & bit) {
                    rc = DECLINE;
                    break;
                }
                chosen |= bit;
            }
        }
        slots[i] = Py_NewRef(item);
    }
    if (rc == OK && (chosen & null_set)) rc = DECLINE;
    for (int i = 0; i < nf && rc == OK; i++) {
        if (slots[i] != NULL) rc = parse_field(ctx, b, &t->fields[i], slots[i], depth);
    }
    for (int i = 0; i < nf; i++) Py_XDECREF(slots[i]);
    if (slots != small) PyMem_Free(slots);
    return rc;
}
