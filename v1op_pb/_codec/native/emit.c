/* Binary wire form -> JSON: the emit driver. It reads what SerializePartialToString wrote
 * and hands the JSON the Python encoder (encode.py, wkt.py) would make of the message to a
 * sink (sink_text.c: compact text; sink_value.c: Python values): fields in number order
 * (declaration order with emit_unpopulated), map entries and Struct members sorted by key.
 *
 * It takes the wire form serializers write: each field's records together and in number
 * order, a singular field once, one member of a oneof, no default written for a field
 * without presence. Anything else (unknown fields, extensions, bytes no serializer writes,
 * as in an Any's payload) it declines, and the Python codec reads the parsed message.
 * A field left out of the output (omit_output_only, an empty repeated field) is still read,
 * with the sink off, so that what would decline declines either way.
 */
#include "native.h"
#include <math.h>

typedef struct {
    Ctx *ctx;
    Sink *sink;
    int quiet; /* > 0: reading only, nothing goes to the sink */
    const uint8_t **spans; /* per level, per field: where its run of records starts */
    Py_ssize_t nspans, cap;
} E;

#define OUT(e, op, ...) ((e)->quiet ? OK : (e)->sink->op((e)->sink, __VA_ARGS__))

/* A string (or a key) from the wire: the sink checks its UTF-8; with the sink off, this. */
static int e_text(E *e, const uint8_t *s, Py_ssize_t n, int key) {
    if (e->quiet) return utf8_valid(s, n) ? OK : DECLINE;
    if (key) return e->sink->key(e->sink, NULL, (const char *)s, n);
    return e->sink->str(e->sink, (const char *)s, n, 0);
}

static int e_message(E *e, Table *t, const uint8_t *p, Py_ssize_t n, int depth, int inline_fields);

/* The shortest of 6 to 9 significant digits that reads back as f, as a double (what
 * scalars._encode_float finds). */
static int float_shortest(float f, double *out) {
    double value = (double)f;
    for (int precision = 6; precision < 10; precision++) {
        char *text = PyOS_double_to_string(value, 'g', precision, 0, NULL);
        if (text == NULL) return ERR;
        double rounded = PyOS_string_to_double(text, NULL, NULL);
        PyMem_Free(text);
        if (rounded == -1.0 && PyErr_Occurred()) return ERR;
        if ((double)(float)rounded == value) {
            *out = rounded;
            return OK;
        }
    }
    *out = value;
    return OK;
}

/* One scalar value of field f, of wire type wt (checked by the caller); *is_default as the
 * field's own reading has it (32-bit values by their low 32 bits). */
static int e_scalar(E *e, const Field *f, int wt, Rd *r, int *is_default) {
    uint64_t v = 0;
    const uint8_t *q;
    Py_ssize_t n;
    char text[24];
    if (wt == 2) {
        if (rd_len(r, &q, &n) != OK) return DECLINE;
        *is_default = n == 0;
        return f->type == T_BYTES ? OUT(e, b64, q, n) : e_text(e, q, n, 0);
    }
    if ((wt == 0 ? rd_varint(r, &v) : rd_fixed(r, wt == 1 ? 8 : 4, &v)) != OK) return DECLINE;
    uint32_t low = (uint32_t)v;
    *is_default = v == 0;
    switch (f->type) {
    case T_INT32: case T_SFIXED32: case T_SINT32: case T_UINT32: case T_FIXED32: case T_ENUM:
        *is_default = low == 0;
        if (f->type == T_SINT32) return OUT(e, integer, (int32_t)((low >> 1) ^ (0u - (low & 1))));
        if (f->type == T_UINT32 || f->type == T_FIXED32) return OUT(e, integer, low);
        if (f->type != T_ENUM) return OUT(e, integer, (int32_t)low);
        if (f->flags & F_NULL_ENUM) return OUT(e, literal, K_NULL);
        PyObject *key = PyLong_FromLong((int32_t)low);
        if (key == NULL) return ERR;
        PyObject *name = PyDict_GetItemWithError(f->enum_names, key);
        Py_DECREF(key);
        if (name != NULL) return OUT(e, object, name);
        if (PyErr_Occurred()) return ERR;
        return f->flags & F_ENUM_CLOSED ? DECLINE : OUT(e, integer, (int32_t)low);
    case T_SINT64: v = (v >> 1) ^ (0 - (v & 1)); /* fall through */
    case T_INT64: case T_SFIXED64: return OUT(e, str, text, fmt_signed(text, (int64_t)v), 1);
    case T_UINT64: case T_FIXED64: return OUT(e, str, text, fmt_digits(text, v, 0), 1);
    case T_BOOL: return OUT(e, literal, v ? K_TRUE : K_FALSE);
    case T_DOUBLE: {
        double d;
        memcpy(&d, &v, 8);
        return OUT(e, number, d);
    }
    case T_FLOAT: {
        float x;
        double d;
        memcpy(&x, &low, 4);
        d = x;
        if (isfinite(d) && float_shortest(x, &d) != OK) return ERR;
        return OUT(e, number, d);
    }
    default: return DECLINE;
    }
}

/* --- maps -------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *key; /* a string key's bytes */
    Py_ssize_t key_n;
    uint64_t order;     /* other keys: unsigned comparison orders them */
    int is_signed;      /* order holds a signed value biased by 2^63 */
    const uint8_t *value, *value_end; /* the value's wire form after its tag, or NULL */
} Entry;

static int read_key(int type, Rd *r, Entry *e) {
    uint64_t v;
    int wt = wire_type(type);
    if (wt == 2) return rd_len(r, &e->key, &e->key_n);
    if ((wt == 0 ? rd_varint(r, &v) : rd_fixed(r, wt == 1 ? 8 : 4, &v)) != OK) return DECLINE;
    int64_t s;
    switch (type) {
    case T_INT32: case T_SFIXED32: s = (int32_t)(uint32_t)v; break;
    case T_SINT32: s = (int32_t)(((uint32_t)v >> 1) ^ (0u - ((uint32_t)v & 1))); break;
    case T_INT64: case T_SFIXED64: s = (int64_t)v; break;
    case T_SINT64: s = (int64_t)((v >> 1) ^ (0 - (v & 1))); break;
    case T_UINT32: case T_FIXED32: e->order = (uint32_t)v; return OK;
    case T_UINT64: case T_FIXED64: e->order = v; return OK;
    case T_BOOL: e->order = v != 0; return OK;
    default: return DECLINE;
    }
    e->is_signed = 1;
    e->order = (uint64_t)s ^ ((uint64_t)1 << 63); /* unsigned order of this is signed order */
    return OK;
}

/* One entry: its key once and its value at most once, each of its field's wire type (not
 * what a serializer writes otherwise: left to Python). */
static int read_entry(const Table *et, const uint8_t *p, Py_ssize_t n, Entry *e) {
    const Field *kf = &et->fields[0], *vf = &et->fields[1];
    Rd r = {p, p + n};
    int has_key = 0;
    *e = (Entry){0};
    while (r.p < r.end) {
        uint64_t tag;
        if (rd_varint(&r, &tag) != OK) return DECLINE;
        if (tag == (uint64_t)(8 | wire_type(kf->type)) && !has_key) {
            if (read_key(kf->type, &r, e) != OK) return DECLINE;
            has_key = 1;
        } else if (tag == (uint64_t)(16 | wire_type(vf->type)) && e->value == NULL) {
            e->value = r.p;
            if (rd_skip(&r, wire_type(vf->type)) != OK) return DECLINE;
            e->value_end = r.p;
        } else {
            return DECLINE;
        }
    }
    return has_key && (e->value != NULL || vf->type == T_MESSAGE) ? OK : DECLINE;
}

/* JSON order: string keys by their UTF-8 bytes (code points, what Python's sorted gives),
 * integers numerically, false before true. */
static int by_key_bytes(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    Py_ssize_t n = x->key_n < y->key_n ? x->key_n : y->key_n;
    int c = n ? memcmp(x->key, y->key, (size_t)n) : 0;
    return c ? c : (x->key_n > y->key_n) - (x->key_n < y->key_n);
}
static int by_key_order(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    return (x->order > y->order) - (x->order < y->order);
}

/* Whether the next record (at r) belongs to field number: its tag consumed if so. */
static int next_of(Rd *r, uint32_t number, int *wt) {
    Rd at = *r;
    uint64_t tag;
    if (r->p == r->end || rd_varint(r, &tag) != OK || (tag >> 3) != number) {
        *r = at;
        return 0;
    }
    *wt = (int)(tag & 7);
    return 1;
}

/* A map field from its run of records at r (the first one's tag read: of wire type wt):
 * entries read, sorted (a key twice declines), written. Struct is one of these
 * (map<string, Value>). */
static int e_map(E *e, const Field *f, Rd *r, int wt, int depth) {
    const Field *kf = &f->sub->fields[0], *vf = &f->sub->fields[1];
    Entry *items = NULL;
    Py_ssize_t count = 0, cap = 0;
    int rc = f->sub->nfields == 2 ? OK : DECLINE, is_default;
    do {
        const uint8_t *q;
        Py_ssize_t n;
        rc = rc == OK && wt == 2 && rd_len(r, &q, &n) == OK ? OK : DECLINE;
        if (rc == OK && count == cap) rc = vec_reserve((void **)&items, &cap, count + 1, sizeof(Entry));
        if (rc == OK) rc = read_entry(f->sub, q, n, &items[count++]);
    } while (rc == OK && next_of(r, f->number, &wt));
    int (*cmp)(const void *, const void *) = kf->type == T_STRING ? by_key_bytes : by_key_order;
    if (rc == OK && count > 16) qsort(items, (size_t)count, sizeof(Entry), cmp);
    for (Py_ssize_t i = 1; rc == OK && count <= 16 && i < count; i++) { /* few: inserted */
        Entry x = items[i];
        Py_ssize_t j = i;
        for (; j > 0 && cmp(&items[j - 1], &x) > 0; j--) items[j] = items[j - 1];
        items[j] = x;
    }
    for (Py_ssize_t i = 1; i < count && rc == OK; i++)
        if (cmp(&items[i - 1], &items[i]) == 0) rc = DECLINE;
    if (rc == OK) rc = OUT(e, open, '{');
    for (Py_ssize_t i = 0; i < count && rc == OK; i++) {
        Entry *x = &items[i];
        char text[24];
        int len = x->is_signed ? fmt_signed(text, (int64_t)(x->order ^ ((uint64_t)1 << 63)))
                               : fmt_digits(text, x->order, 0);
        if (kf->type == T_BOOL) len = x->order ? 4 : 5, memcpy(text, x->order ? "true" : "false", 5);
        rc = kf->type == T_STRING ? e_text(e, x->key, x->key_n, 1) : OUT(e, key, NULL, text, len);
        Rd vr = {x->value, x->value_end};
        const uint8_t *q = (const uint8_t *)"";
        Py_ssize_t n = 0;
        if (rc == OK && vf->type == T_MESSAGE) {
            if (x->value != NULL) rc = rd_len(&vr, &q, &n);
            if (rc == OK) rc = e_message(e, vf->sub, q, n, depth + 2, 0);
        } else if (rc == OK) {
            rc = e_scalar(e, vf, wire_type(vf->type), &vr, &is_default);
        }
    }
    PyMem_Free(items);
    return rc == OK ? OUT(e, close, '}') : rc;
}

/* --- messages ------------------------------------------------------------------------------ */

enum { PLAIN, WRAPPED };

/* The JSON value of a field from its run of records at r (a serializer writes a field's
 * records together), the first one's tag read (of wire type wt). A singular field takes one
 * record: a second is the next run's, which e_next declines. PLAIN: a default read for a
 * field without presence declines (it would be unset); WRAPPED: a wrapper's value. */
static int e_field(E *e, const Field *f, Rd *r, int wt, int depth, int mode) {
    if (f->flags & F_MAP) return e_map(e, f, r, wt, depth);
    int repeated = (f->flags & F_REPEATED) != 0, rc = OK, is_default;
    if (repeated) rc = OUT(e, open, '[');
    do {
        const uint8_t *q;
        Py_ssize_t n;
        if (rc != OK) break;
        if (wt == 2 && (f->type == T_MESSAGE || (repeated && wire_type(f->type) != 2))) {
            if (rd_len(r, &q, &n) != OK) return DECLINE;
            if (f->type == T_MESSAGE) rc = e_message(e, f->sub, q, n, depth + 1, 0);
            for (Rd packed = {q, q + n}; f->type != T_MESSAGE && packed.p < packed.end && rc == OK;)
                rc = e_scalar(e, f, wire_type(f->type), &packed, &is_default);
        } else if (wt == wire_type(f->type)) {
            rc = e_scalar(e, f, wt, r, &is_default);
            if (rc == OK && is_default && !repeated && mode == PLAIN &&
                !(f->flags & F_PRESENCE) && !e->ctx->emit_unpopulated)
                rc = DECLINE;
        } else {
            rc = DECLINE;
        }
    } while (repeated && rc == OK && next_of(r, f->number, &wt));
    return rc == OK && repeated ? OUT(e, close, ']') : rc;
}

/* The field whose run of records starts at r, in number order after the last one and the
 * one member of its oneof there: its index (the tag read, of wire type *wt), or -1
 * (declined: an unknown field or an extension too). */
static int e_next(const Table *t, Rd *r, int *wt, int *last, uint64_t *oneofs) {
    uint64_t tag, bit;
    if (rd_varint(r, &tag) != OK || (tag >> 35)) return -1;
    int i = field_index(t, (uint32_t)(tag >> 3));
    *wt = (int)(tag & 7);
    if (i <= *last) return -1;
    bit = t->fields[i].oneof >= 0 ? (uint64_t)1 << t->fields[i].oneof : 0;
    if (*oneofs & bit) return -1; /* tables have at most 64 oneofs (module.c) */
    *oneofs |= bit;
    return *last = i;
}

/* Whether a repeated scalar field's run at r holds no element (only empty packed records). */
static int no_elements(const Field *f, Rd r, int wt) {
    uint64_t len;
    if (!(f->flags & F_REPEATED) || (f->flags & F_MAP) || wire_type(f->type) == 2) return 0;
    do {
        if (wt != 2 || rd_varint(&r, &len) != OK || len) return 0;
    } while (next_of(&r, f->number, &wt));
    return 1;
}

/* One present field, key and value; read with the sink off when it is left out. */
static int e_member(E *e, const Field *f, Rd *r, int wt, int depth) {
    int quiet = (e->ctx->omit_output_only && (f->flags & F_OUTPUT_ONLY)) ||
                (!e->ctx->emit_unpopulated && no_elements(f, *r, wt));
    e->quiet += quiet;
    int rc = OUT(e, field_key, f);
    if (rc == OK) rc = e_field(e, f, r, wt, depth, PLAIN);
    e->quiet -= quiet;
    return rc;
}

static int e_fields(E *e, Table *t, const uint8_t *p, Py_ssize_t n, int depth, int inline_fields) {
    Rd r = {p, p + n};
    int rc = inline_fields ? OK : OUT(e, open, '{'), last = -1, i, wt;
    uint64_t oneofs = 0;
    if (!e->ctx->emit_unpopulated) { /* number order: one pass */
        while (rc == OK && r.p < r.end) {
            i = e_next(t, &r, &wt, &last, &oneofs);
            rc = i < 0 ? DECLINE : e_member(e, &t->fields[i], &r, wt, depth);
        }
        return rc == OK && !inline_fields ? OUT(e, close, '}') : rc;
    }
    /* declaration order: where each field's run starts, first */
    Py_ssize_t base = e->nspans;
    if (vec_reserve((void **)&e->spans, &e->cap, base + t->nfields + 1, sizeof(*e->spans)) != OK)
        return ERR;
    memset(e->spans + base, 0, sizeof(*e->spans) * (size_t)t->nfields);
    e->nspans = base + t->nfields;
    while (rc == OK && r.p < r.end) {
        const uint8_t *at = r.p;
        if ((i = e_next(t, &r, &wt, &last, &oneofs)) < 0) rc = DECLINE;
        else e->spans[base + i] = at;
        do rc = rc == OK ? rd_skip(&r, wt) : rc;
        while (rc == OK && (t->fields[i].flags & F_REPEATED) && next_of(&r, t->fields[i].number, &wt));
    }
    for (int k = 0; k < t->nfields && rc == OK; k++) {
        const Field *f = &t->fields[t->decl[k]];
        Rd run = {e->spans[base + t->decl[k]], p + n};
        if (run.p != NULL) rc = next_of(&run, f->number, &wt) ? e_member(e, f, &run, wt, depth) : DECLINE;
        else if (f->unpopulated && !(e->ctx->omit_output_only && (f->flags & F_OUTPUT_ONLY)))
            rc = OUT(e, field_key, f) == OK ? OUT(e, object, f->unpopulated) : ERR;
    }
    e->nspans = base;
    return rc == OK && !inline_fields ? OUT(e, close, '}') : rc;
}

/* --- well-known types ------------------------------------------------------------------------ */

/* Struct, ListValue and the wrappers: the JSON value of their one field. */
static int e_only_field(E *e, Table *t, const uint8_t *p, Py_ssize_t n, int depth) {
    Rd r = {p, p + n};
    int last = -1, rc, wt;
    uint64_t oneofs = 0;
    const Field *f = &t->fields[0];
    if (r.p < r.end) {
        rc = e_next(t, &r, &wt, &last, &oneofs) < 0 ? DECLINE : e_field(e, f, &r, wt, depth, WRAPPED);
        return rc == OK && r.p != r.end ? DECLINE : rc; /* another field */
    }
    if (t->wkt == W_WRAPPER) return f->unpopulated ? OUT(e, object, f->unpopulated) : DECLINE;
    int bracket = t->wkt == W_STRUCT ? '{' : '[';
    rc = OUT(e, open, bracket);
    return rc == OK ? OUT(e, close, bracket + 2) : rc; /* '}' and ']' follow by two */
}

/* A Value of one kind (1 null, 2 number, 3 string, 4 bool, 5 struct, 6 list); none is null,
 * as json_format writes it. Two kinds on the wire (serializers write one), a number that is
 * not finite and a null_value other than 0 (no JSON form) are left to Python. */
static int e_value(E *e, Table *t, const uint8_t *p, Py_ssize_t n, int depth) {
    Rd r = {p, p + n};
    uint64_t tag, v = 0;
    const uint8_t *q = NULL;
    Py_ssize_t len = 0;
    double d = 0;
    if (n == 0) return OUT(e, literal, K_NULL);
    if (rd_varint(&r, &tag) != OK) return DECLINE;
    switch (tag) {
    case 1 << 3: case 4 << 3:
        if (rd_varint(&r, &v) != OK || (tag == 1 << 3 && (uint32_t)v != 0)) return DECLINE;
        break;
    case 2 << 3 | 1:
        if (rd_fixed(&r, 8, &v) != OK) return DECLINE;
        memcpy(&d, &v, 8);
        if (!isfinite(d)) return DECLINE;
        break;
    case 3 << 3 | 2: case 5 << 3 | 2: case 6 << 3 | 2:
        if (rd_len(&r, &q, &len) != OK) return DECLINE;
        break;
    default: return DECLINE;
    }
    if (r.p != r.end) return DECLINE;
    switch (tag >> 3) {
    case 1: return OUT(e, literal, K_NULL);
    case 2: return OUT(e, number, d);
    case 3: return e_text(e, q, len, 0);
    case 4: return OUT(e, literal, v ? K_TRUE : K_FALSE);
    default: {
        Table *sub = field_sub(t, (uint32_t)(tag >> 3));
        return sub ? e_message(e, sub, q, len, depth + 1, 0) : DECLINE;
    }
    }
}

/* An Any: its type URL (field 1) and value (field 2), the last of each winning as a parse
 * has it; the payload read with its type's table. */
static int e_any(E *e, const uint8_t *p, Py_ssize_t n, int depth) {
    Rd r = {p, p + n};
    const uint8_t *url = NULL, *value = (const uint8_t *)"", *q;
    Py_ssize_t url_n = 0, value_n = 0, len;
    while (r.p < r.end) {
        uint64_t tag;
        if (rd_varint(&r, &tag) != OK || (tag != (1 << 3 | 2) && tag != (2 << 3 | 2)) ||
            rd_len(&r, &q, &len) != OK)
            return DECLINE;
        if (tag >> 3 == 1) url = q, url_n = len;
        else value = q, value_n = len;
    }
    int rc;
    if (url_n == 0) {
        if (value_n || (rc = OUT(e, open, '{')) != OK) return value_n ? DECLINE : rc;
        return OUT(e, close, '}');
    }
    PyObject *type_url = PyUnicode_DecodeUTF8((const char *)url, url_n, NULL);
    if (type_url == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return ERR;
        PyErr_Clear();
        return DECLINE; /* the Python codec reports it */
    }
    Table *inner = resolve_type(e->ctx, type_url, &rc);
    State *st = e->ctx->st;
    if (rc == OK) rc = OUT(e, open, '{');
    if (rc == OK) rc = OUT(e, key, st->s_type, "@type", 5);
    if (rc == OK) rc = OUT(e, object, type_url);
    if (rc == OK && inner->wkt != W_NONE) {
        rc = OUT(e, key, st->s_value, "value", 5);
        if (rc == OK) rc = e_message(e, inner, value, value_n, depth + 1, 0);
    } else if (rc == OK) {
        rc = e_message(e, inner, value, value_n, depth + 1, 1);
    }
    if (rc == OK) rc = OUT(e, close, '}');
    Py_XDECREF(inner);
    Py_DECREF(type_url);
    return rc;
}

static int e_wkt(E *e, Table *t, const uint8_t *p, Py_ssize_t n, int depth) {
    char text[WKT_TEXT_MAX];
    int len, rc;
    switch (t->wkt) {
    case W_TIMESTAMP: case W_DURATION:
        len = t->wkt == W_TIMESTAMP ? timestamp_text(p, n, text) : duration_text(p, n, text);
        return len < 0 ? DECLINE : OUT(e, str, text, len, 1);
    case W_FIELD_MASK: {
        Buf mask = {0};
        rc = field_mask_text(p, n, &mask);
        if (rc == OK) rc = OUT(e, str, mask.data ? mask.data : "", mask.len, 0);
        buf_free(&mask);
        return rc;
    }
    case W_STRUCT: case W_LIST_VALUE: case W_WRAPPER: return e_only_field(e, t, p, n, depth);
    case W_VALUE: return e_value(e, t, p, n, depth);
    case W_ANY: return e_any(e, p, n, depth);
    default: return DECLINE;
    }
}

static int e_message(E *e, Table *t, const uint8_t *p, Py_ssize_t n, int depth, int inline_fields) {
    if (depth > MAX_DEPTH || (t->flags & TF_UNSUPPORTED) || !t->ready) return DECLINE;
    if (t->wkt != W_NONE && !inline_fields) return e_wkt(e, t, p, n, depth);
    return e_fields(e, t, p, n, depth, inline_fields);
}

int emit(Ctx *ctx, Sink *sink, Table *t, const uint8_t *p, Py_ssize_t n) {
    E e = {ctx, sink, 0, NULL, 0, 0};
    int rc = e_message(&e, t, p, n, 1, 0);
    PyMem_Free(e.spans);
    return rc;
}
