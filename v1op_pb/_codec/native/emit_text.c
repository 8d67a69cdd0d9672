/* Binary wire form -> compact JSON text, driven by a Table: encode_text.
 *
 * The contract: whenever this writes text, emit.c's JSON value of the same bytes exists and
 * orjson.dumps of it is this text, byte for byte. So this mirrors emit.c step by step (the
 * same checks, the same depth counting, the same order of fields and map entries) and only
 * writes text where emit.c builds objects; where emit.c would take something unusual
 * (fields out of number order, a singular field repeated on the wire, two members of one
 * oneof, a default written for a field without presence) this declines instead: the value
 * path runs, which serializers never make necessary.
 */
#include "native.h"
#include <math.h>
#include <string.h>

static inline int put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n) != OK) return ERR;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return OK;
}

static int read_len(Rd *r, const uint8_t **p, Py_ssize_t *n) {
    uint64_t len;
    if (rd_varint1(r, &len) != OK || len > (uint64_t)(r->end - r->p)) return DECLINE;
    *p = r->p;
    *n = (Py_ssize_t)len;
    r->p += len;
    return OK;
}

static uint64_t read_fixed(Rd *r, int size) {
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--) v = (v << 8) | r->p[i];
    r->p += size;
    return v;
}

static int put_digits(Buf *b, int64_t v, int quoted) {
    char text[26];
    int n = 0;
    if (quoted) text[n++] = '"';
    n += fmt_signed(text + n, v);
    if (quoted) text[n++] = '"';
    return put(b, text, n);
}

static int put_udigits(Buf *b, uint64_t v, int quoted) {
    char text[26];
    int n = 0;
    if (quoted) text[n++] = '"';
    n += fmt_digits(text + n, v, 0);
    if (quoted) text[n++] = '"';
    return put(b, text, n);
}

/* One scalar, as emit.c's read_scalar reads it (wire type checked by the caller). */
int text_scalar(Buf *b, const Field *f, int wire_type, Rd *r, int *is_default) {
    uint64_t v = 0;
    if (wire_type != field_wire_type(f->type)) return DECLINE;
    switch (wire_type) {
    case 0:
        if (rd_varint1(r, &v) != OK) return DECLINE;
        break;
    case 1: case 5: {
        int size = wire_type == 1 ? 8 : 4;
        if (r->end - r->p < size) return DECLINE;
        v = read_fixed(r, size);
        break;
    }
    default: {
        const uint8_t *p;
        Py_ssize_t n;
        if (read_len(r, &p, &n) != OK) return DECLINE;
        *is_default = n == 0;
        if (f->type == T_STRING) return json_string(b, p, n);
        if (buf_reserve(b, base64_size(n) + 2) != OK) return ERR;
        b->data[b->len++] = '"';
        base64_write(b->data + b->len, p, n);
        b->len += base64_size(n);
        b->data[b->len++] = '"';
        return OK;
    }
    }
    *is_default = v == 0;
    switch (f->type) {
    case T_INT32: case T_SFIXED32:
        *is_default = (uint32_t)v == 0;
        return put_digits(b, (int32_t)(uint32_t)v, 0);
    case T_SINT32: {
        uint32_t z = (uint32_t)v;
        *is_default = z == 0;
        return put_digits(b, (int32_t)((z >> 1) ^ (0u - (z & 1))), 0);
    }
    case T_UINT32: case T_FIXED32:
        *is_default = (uint32_t)v == 0;
        return put_udigits(b, (uint32_t)v, 0);
    case T_INT64: case T_SFIXED64: return put_digits(b, (int64_t)v, 1);
    case T_SINT64: return put_digits(b, (int64_t)((v >> 1) ^ (0 - (v & 1))), 1);
    case T_UINT64: case T_FIXED64: return put_udigits(b, v, 1);
    case T_BOOL: return v ? put(b, "true", 4) : put(b, "false", 5);
    case T_DOUBLE: {
        double d;
        memcpy(&d, &v, 8);
        return json_double(b, d);
    }
    case T_FLOAT: {
        uint32_t bits = (uint32_t)v;
        float x;
        double d;
        memcpy(&x, &bits, 4);
        d = x;
        if (isfinite(d) && float_shortest(x, &d) != OK) return ERR;
        return json_double(b, d);
    }
    case T_ENUM: {
        int32_t number = (int32_t)(uint32_t)v;
        *is_default = number == 0;
        if (f->flags & F_NULL_ENUM) return put(b, "null", 4);
        PyObject *key = PyLong_FromLong(number);
        if (key == NULL) return ERR;
        PyObject *name = PyDict_GetItemWithError(f->enum_names, key);
        Py_DECREF(key);
        if (name != NULL) return json_str_object(b, name);
        if (PyErr_Occurred()) return ERR;
        if (f->flags & F_ENUM_CLOSED) return DECLINE;
        return put_digits(b, number, 0);
    }
    default: return DECLINE;
    }
}

static int put_key(Buf *b, const Field *f, int *first) {
    if (!*first && put(b, ",", 1) != OK) return ERR;
    *first = 0;
    int rc = json_str_object(b, f->json_key);
    return rc == OK ? put(b, ":", 1) : rc;
}

/* A map field's entries (all its records are in [p, end)), sorted as maps.c orders them. */
static int text_map(Ctx *ctx, Buf *b, const Field *f, const uint8_t *p, const uint8_t *end,
                    int depth) {
    const Table *et = f->sub;
    const Field *kf = &et->fields[0], *vf = &et->fields[1];
    MapList m = {0};
    Rd r = {p, end};
    int rc = OK;
    while (r.p < r.end && rc == OK) {
        uint64_t tag;
        const uint8_t *q;
        Py_ssize_t n;
        rc = rd_varint1(&r, &tag);
        if (rc == OK) rc = read_len(&r, &q, &n);
        if (rc == OK) rc = map_list_add(&m, et, q, n);
    }
    if (rc == OK) rc = map_list_sort(&m, kf->type);
    if (rc == OK) rc = put(b, "{", 1);
    for (Py_ssize_t i = 0; i < m.n && rc == OK; i++) {
        const MapEntry *e = &m.items[i];
        if (i && put(b, ",", 1) != OK) {
            rc = ERR;
            break;
        }
        if (kf->type == T_STRING) {
            rc = json_string(b, e->key, e->key_n);
        } else {
            char text[26];
            text[0] = '"';
            int len = 1 + map_key_digits(e, kf->type, text + 1);
            text[len++] = '"';
            rc = put(b, text, len);
        }
        if (rc == OK) rc = put(b, ":", 1);
        if (rc != OK) break;
        Rd vr = {e->value, e->value_end};
        if (vf->type == T_MESSAGE) {
            const uint8_t *q = (const uint8_t *)"";
            Py_ssize_t n = 0;
            if (e->has_value) rc = read_len(&vr, &q, &n);
            if (rc == OK) rc = text_message(ctx, b, vf->sub, q, n, depth + 2, NULL);
        } else {
            int is_default;
            rc = text_scalar(b, vf, field_wire_type(vf->type), &vr, &is_default);
        }
    }
    map_list_free(&m);
    return rc == OK ? put(b, "}", 1) : rc;
}

/* The JSON value of one present field from its records in [p, end); *empty when a
 * repeated field turned out to hold nothing, *unset when a singular scalar read as its
 * default without presence (emit.c drops both). */
static int text_field(Ctx *ctx, Buf *b, const Field *f, const uint8_t *p, const uint8_t *end,
                      int depth, int *empty, int *unset) {
    if (f->flags & F_MAP) return text_map(ctx, b, f, p, end, depth);
    Rd r = {p, end};
    int repeated = (f->flags & F_REPEATED) != 0, rc = OK, count = 0;
    if (repeated && put(b, "[", 1) != OK) return ERR;
    while (r.p < r.end && rc == OK) {
        uint64_t tag;
        if (rd_varint1(&r, &tag) != OK) return DECLINE;
        int wt = (int)(tag & 7);
        if (f->type == T_MESSAGE) {
            const uint8_t *q;
            Py_ssize_t n;
            if (read_len(&r, &q, &n) != OK) return DECLINE;
            if (count++ && put(b, ",", 1) != OK) return ERR;
            rc = text_message(ctx, b, f->sub, q, n, depth + 1, NULL);
        } else if (repeated && wt == 2 && field_wire_type(f->type) != 2) { /* packed */
            const uint8_t *q;
            Py_ssize_t n;
            if (read_len(&r, &q, &n) != OK) return DECLINE;
            Rd packed = {q, q + n};
            while (packed.p < packed.end && rc == OK) {
                int is_default;
                if (count++ && put(b, ",", 1) != OK) return ERR;
                rc = text_scalar(b, f, field_wire_type(f->type), &packed, &is_default);
            }
        } else {
            int is_default = 0;
            if (count++ && put(b, ",", 1) != OK) return ERR;
            rc = text_scalar(b, f, wt, &r, &is_default);
            if (!repeated && is_default && !(f->flags & F_PRESENCE)) *unset = 1;
        }
    }
    if (rc != OK) return rc;
    *empty = repeated && count == 0;
    return repeated ? put(b, "]", 1) : OK;
}

#define SMALL 32

int text_message(Ctx *ctx, Buf *b, Table *t, const uint8_t *p, Py_ssize_t n, int depth,
                 int *first) {
    if (depth > MAX_DEPTH || (t->flags & TF_UNSUPPORTED) || !t->ready) return DECLINE;
    if (t->wkt != W_NONE && first == NULL) return text_wkt(ctx, b, t, p, n, depth);
    int nf = t->nfields;
    /* where each field's records start and end: a serializer writes each field's records
     * together, in number order */
    const uint8_t *small[2 * SMALL];
    const uint8_t **span = small;
    if (nf > SMALL) {
        span = PyMem_Calloc((size_t)nf * 2, sizeof(*span));
        if (span == NULL) {
            PyErr_NoMemory();
            return ERR;
        }
    } else {
        memset(small, 0, sizeof(*span) * 2 * (size_t)nf);
    }
    uint64_t oneofs_seen = 0; /* tables have at most 64 oneofs (module.c) */
    Rd r = {p, p + n};
    int rc = OK, last = -1;
    while (r.p < r.end && rc == OK) {
        const uint8_t *at = r.p;
        uint64_t tag;
        if (rd_varint1(&r, &tag) != OK || (tag >> 35)) {
            rc = DECLINE;
            break;
        }
        int wt = (int)(tag & 7);
        int i = -1;
        uint32_t number = (uint32_t)(tag >> 3);
        if (number < t->dense) {
            i = t->by_number[number];
        } else {
            for (int k = 0; k < nf; k++)
                if (t->fields[k].number == number) i = k;
        }
        if (i < 0) {
            rc = DECLINE; /* an unknown field or an extension */
            break;
        }
        const Field *f = &t->fields[i];
        int packed = wt == 2 && (f->flags & F_REPEATED) && !(f->flags & F_MAP) &&
                     field_wire_type(f->type) != 2;
        if ((wt != field_wire_type(f->type) && !packed) || wire_skip(&r, wt) != OK) {
            rc = DECLINE;
            break;
        }
        if (i != last) {
            if (span[2 * i] != NULL || i < last) {
                rc = DECLINE; /* out of number order, or a field in two places */
                break;
            }
            if (f->oneof >= 0) {
                if (oneofs_seen & ((uint64_t)1 << f->oneof)) {
                    rc = DECLINE; /* two members of one oneof */
                    break;
                }
                oneofs_seen |= (uint64_t)1 << f->oneof;
            }
            span[2 * i] = at;
        } else if (!(f->flags & F_REPEATED)) {
            rc = DECLINE; /* a singular field twice: the last would win, or messages merge */
            break;
        }
        span[2 * i + 1] = r.p;
        last = i;
    }
    int own = first == NULL, first_here = 1;
    if (own) first = &first_here;
    if (rc == OK && own) rc = put(b, "{", 1);
    for (int k = 0; k < nf && rc == OK; k++) {
        int i = ctx->emit_unpopulated ? t->decl[k] : k;
        const Field *f = &t->fields[i];
        int omit = ctx->omit_output_only && (f->flags & F_OUTPUT_ONLY);
        Py_ssize_t mark = b->len;
        int was_first = *first;
        if (span[2 * i] == NULL) {
            if (omit || !ctx->emit_unpopulated || f->unpopulated == NULL) continue;
            rc = put_key(b, f, first);
            if (rc == OK) rc = json_pyvalue(b, f->unpopulated, 0);
            continue;
        }
        int empty = 0, unset = 0;
        rc = put_key(b, f, first);
        if (rc == OK)
            rc = text_field(ctx, b, f, span[2 * i], span[2 * i + 1], depth, &empty, &unset);
        if (rc != OK) break;
        if (unset && !ctx->emit_unpopulated) {
            /* emit.c reads a default without presence as unset: never written by a
             * serializer, so the value path may have it */
            rc = DECLINE;
            break;
        }
        /* an omitted field is still written (and dropped) so that what emit.c declines
         * declines here too */
        if (omit || (empty && !ctx->emit_unpopulated)) {
            b->len = mark;
            *first = was_first;
        }
    }
    if (rc == OK && own) rc = put(b, "}", 1);
    if (span != small) PyMem_Free(span);
    return rc;
}
