/* Map entries (and Struct's, a map<string, Value>) read from the wire and put in the order
 * JSON output writes them: keys sorted, strings by their UTF-8 bytes (= code points, what
 * Python's sorted gives for str), integers numerically, false before true.
 *
 * The order a serializer writes a map in (and a map's iteration order) is upb's hash order,
 * seeded per process; sorting makes the text the same in every process, and lets the core
 * read an Any payload's maps straight from its bytes. Both emitters (the JSON value of
 * emit.c and the text of emit_text.c) read entries here, so they cannot disagree on order.
 */
#include "native.h"
#include <string.h>

void map_list_free(MapList *m) {
    PyMem_Free(m->items);
    m->items = NULL;
    m->n = m->cap = 0;
}

static int map_list_push(MapList *m, const MapEntry *e) {
    if (m->n == m->cap) {
        Py_ssize_t cap = m->cap ? m->cap * 2 : 8;
        MapEntry *items = PyMem_Realloc(m->items, (size_t)cap * sizeof(MapEntry));
        if (items == NULL) {
            PyErr_NoMemory();
            return ERR;
        }
        m->items = items;
        m->cap = cap;
    }
    m->items[m->n++] = *e;
    return OK;
}

/* Skip one value of wire type wt (what a map entry's value field may be). */
int wire_skip(Rd *r, int wt) {
    uint64_t v;
    switch (wt) {
    case 0: return rd_varint1(r, &v);
    case 1:
        if (r->end - r->p < 8) return DECLINE;
        r->p += 8;
        return OK;
    case 5:
        if (r->end - r->p < 4) return DECLINE;
        r->p += 4;
        return OK;
    case 2:
        if (rd_varint1(r, &v) != OK || v > (uint64_t)(r->end - r->p)) return DECLINE;
        r->p += v;
        return OK;
    default: return DECLINE;
    }
}

static uint64_t read_fixed(Rd *r, int size) {
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--) v = (v << 8) | r->p[i];
    r->p += size;
    return v;
}

/* The key of an entry: its bytes (strings) or its value made orderable as unsigned. */
static int read_key(int type, Rd *r, MapEntry *e) {
    uint64_t v = 0;
    int wt = field_wire_type(type);
    if (wt == 2) {
        if (rd_varint1(r, &v) != OK || v > (uint64_t)(r->end - r->p)) return DECLINE;
        e->key = r->p;
        e->key_n = (Py_ssize_t)v;
        r->p += v;
        return OK;
    }
    if (wt == 0) {
        if (rd_varint1(r, &v) != OK) return DECLINE;
    } else if (r->end - r->p < (wt == 1 ? 8 : 4)) {
        return DECLINE;
    } else {
        v = read_fixed(r, wt == 1 ? 8 : 4);
    }
    int64_t s = 0;
    e->is_signed = 1;
    switch (type) {
    case T_INT32: case T_SFIXED32: s = (int32_t)(uint32_t)v; break;
    case T_SINT32: {
        uint32_t z = (uint32_t)v;
        s = (int32_t)((z >> 1) ^ (0u - (z & 1)));
        break;
    }
    case T_INT64: case T_SFIXED64: s = (int64_t)v; break;
    case T_SINT64: s = (int64_t)((v >> 1) ^ (0 - (v & 1))); break;
    case T_UINT32: case T_FIXED32:
        e->is_signed = 0;
        e->order = (uint32_t)v;
        return OK;
    case T_UINT64: case T_FIXED64:
        e->is_signed = 0;
        e->order = v;
        return OK;
    case T_BOOL:
        e->is_signed = 0;
        e->order = v != 0;
        return OK;
    default: return DECLINE;
    }
    /* biased by 2^63: unsigned comparison of the result orders the signed values */
    e->order = (uint64_t)s ^ ((uint64_t)1 << 63);
    return OK;
}

int map_entry_read(const Table *et, const uint8_t *p, Py_ssize_t n, MapEntry *e) {
    const Field *kf = &et->fields[0], *vf = &et->fields[1];
    Rd r = {p, p + n};
    int has_key = 0;
    memset(e, 0, sizeof(*e));
    while (r.p < r.end) {
        uint64_t tag;
        if (rd_varint1(&r, &tag) != OK || (tag >> 35)) return DECLINE;
        uint32_t number = (uint32_t)(tag >> 3);
        int wt = (int)(tag & 7);
        /* a key or value given twice is not what a serializer writes: leave it to Python */
        if (number == 1 && !has_key && wt == field_wire_type(kf->type)) {
            if (read_key(kf->type, &r, e) != OK) return DECLINE;
            has_key = 1;
        } else if (number == 2 && !e->has_value && wt == field_wire_type(vf->type)) {
            e->value = r.p;
            if (wire_skip(&r, wt) != OK) return DECLINE;
            e->value_end = r.p;
            e->has_value = 1;
        } else {
            return DECLINE;
        }
    }
    if (!has_key) return DECLINE; /* a hand-made entry: leave it to Python */
    if (!e->has_value && vf->type != T_MESSAGE) return DECLINE;
    return OK;
}

int map_list_add(MapList *m, const Table *et, const uint8_t *p, Py_ssize_t n) {
    MapEntry e;
    int rc = map_entry_read(et, p, n, &e);
    return rc == OK ? map_list_push(m, &e) : rc;
}

int struct_entries(const uint8_t *p, Py_ssize_t n, MapList *m) {
    Rd r = {p, p + n};
    while (r.p < r.end) {
        uint64_t tag, len;
        if (rd_varint1(&r, &tag) != OK || tag != ((1 << 3) | 2) || rd_varint1(&r, &len) != OK ||
            len > (uint64_t)(r.end - r.p))
            return DECLINE;
        Rd er = {r.p, r.p + len};
        r.p += len;
        MapEntry e;
        memset(&e, 0, sizeof(e));
        int has_key = 0;
        while (er.p < er.end) {
            uint64_t etag, elen;
            if (rd_varint1(&er, &etag) != OK || (etag & 7) != 2 || rd_varint1(&er, &elen) != OK ||
                elen > (uint64_t)(er.end - er.p))
                return DECLINE;
            if (etag >> 3 == 1 && !has_key) {
                e.key = er.p;
                e.key_n = (Py_ssize_t)elen;
                has_key = 1;
            } else if (etag >> 3 == 2 && !e.has_value) {
                e.value = er.p;
                e.value_end = er.p + elen;
                e.has_value = 1;
            } else {
                return DECLINE; /* a value in two parts would merge; another field */
            }
            er.p += elen;
        }
        if (!has_key) return DECLINE;
        if (map_list_push(m, &e) != OK) return ERR;
    }
    return map_list_sort(m, T_STRING);
}

static int cmp_bytes_key(const void *a, const void *b) {
    const MapEntry *x = a, *y = b;
    Py_ssize_t n = x->key_n < y->key_n ? x->key_n : y->key_n;
    int c = n ? memcmp(x->key, y->key, (size_t)n) : 0;
    if (c) return c;
    return (x->key_n > y->key_n) - (x->key_n < y->key_n);
}

static int cmp_order_key(const void *a, const void *b) {
    const MapEntry *x = a, *y = b;
    return (x->order > y->order) - (x->order < y->order);
}

int map_list_sort(MapList *m, int key_type) {
    if (m->n < 2) return OK;
    int (*cmp)(const void *, const void *) = key_type == T_STRING ? cmp_bytes_key
                                                                  : cmp_order_key;
    qsort(m->items, (size_t)m->n, sizeof(MapEntry), cmp);
    for (Py_ssize_t i = 1; i < m->n; i++)
        if (cmp(&m->items[i - 1], &m->items[i]) == 0)
            return DECLINE; /* a key written twice: not what a serializer does */
    return OK;
}

int map_key_digits(const MapEntry *e, int key_type, char *out) {
    if (key_type == T_BOOL) {
        memcpy(out, e->order ? "true" : "false", e->order ? 4 : 5);
        return e->order ? 4 : 5;
    }
    if (!e->is_signed) return fmt_digits(out, e->order, 0);
    return fmt_signed(out, (int64_t)(e->order ^ ((uint64_t)1 << 63)));
}
