/* JSON text -> binary wire form in one pass, driven by a Table, with no Python value in
 * between: the text path of decode (parse.c), step for step.
 *
 * The contract is parse.c's, on the value jsontext.loads would read: whenever this writes
 * bytes, decode() of that value writes the same bytes; everything else it declines. So it
 * mirrors parse.c's checks in the same order (depths, oneofs, nulls), hands scalars to
 * parse.c's own writers (as the Python objects orjson would have made, where the writer
 * takes objects), and declines what only a Python value settles: unknown keys (also with
 * ignore_unknown), a key given twice in any object, an Any whose "@type" is not its first
 * key, a fraction or exponent where an integer is expected.
 *
 * Fields are written as their keys come and put in number order when the object ends; map
 * entries and Struct fields likewise, sorted as parse.c sorts them. The well-known types'
 * own forms are read in wkt_text.c.
 */
#include "parse_text.h"
#include <string.h>

void segs_init(Segs *s) {
    s->items = s->small;
    s->n = 0;
    s->cap = SMALL;
}

void segs_free(Segs *s) {
    if (s->items != s->small) PyMem_Free(s->items);
}

Seg *segs_add(Segs *s) {
    if (s->n == s->cap) {
        Seg *grown = PyMem_Malloc(sizeof(Seg) * (size_t)s->cap * 2);
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        memcpy(grown, s->items, sizeof(Seg) * (size_t)s->n);
        segs_free(s);
        s->items = grown;
        s->cap *= 2;
    }
    return &s->items[s->n++];
}

/* Put the (contiguous) segments' bytes in their sorted order. */
static int reorder(Buf *b, const Segs *s) {
    if (s->n < 2) return OK;
    Py_ssize_t base = s->items[0].start, total = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        if (s->items[i].start < base) base = s->items[i].start;
        total += s->items[i].end - s->items[i].start;
    }
    char *tmp = PyMem_Malloc((size_t)total);
    if (tmp == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Py_ssize_t len = s->items[i].end - s->items[i].start;
        memcpy(tmp + at, b->data + s->items[i].start, (size_t)len);
        at += len;
    }
    memcpy(b->data + base, tmp, (size_t)total);
    PyMem_Free(tmp);
    return OK;
}

static int cmp_index(const void *a, const void *b) {
    const Seg *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}
static int cmp_key(const void *a, const void *b) {
    const Seg *x = a, *y = b;
    return map_order_str(x->k, x->kn, y->k, y->kn);
}
static int cmp_u(const void *a, const void *b) {
    const Seg *x = a, *y = b;
    return (x->u < y->u) - (x->u > y->u);
}

int sort_entries(Buf *b, Segs *s, int by_string) {
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Seg *e = &s->items[i];
        e->k = b->data + e->end - e->rel - e->kn; /* the buffer has stopped moving */
    }
    qsort(s->items, (size_t)s->n, sizeof(Seg), by_string ? cmp_key : cmp_u);
    for (Py_ssize_t i = 1; i < s->n; i++)
        if ((by_string ? cmp_key : cmp_u)(&s->items[i - 1], &s->items[i]) == 0) return DECLINE;
    return reorder(b, s);
}

/* --- scalars ------------------------------------------------------------------------------ */

static int is_integral(int type) {
    return type != T_DOUBLE && type != T_FLOAT && type != T_STRING && type != T_BYTES &&
           type != T_BOOL;
}

/* The Python object orjson reads from a scalar token. */
static int tok_object(const Tok *t, PyObject **out) {
    double d;
    switch (t->kind) {
    case K_STRING: *out = PyUnicode_DecodeUTF8(t->s, t->n, NULL); break;
    case K_INT: *out = PyLong_FromLongLong(t->i); break;
    case K_FLOAT:
        if (lx_double(t, &d) != OK) return PyErr_Occurred() ? ERR : DECLINE;
        *out = PyFloat_FromDouble(d);
        break;
    case K_TRUE: *out = Py_NewRef(Py_True); break;
    case K_FALSE: *out = Py_NewRef(Py_False); break;
    case K_NULL: *out = Py_NewRef(Py_None); break;
    default: return DECLINE;
    }
    return *out ? OK : ERR;
}

int tx_scalar(Ctx *ctx, Lx *x, Buf *b, const Field *f, int in_packed, int force) {
    Tok t;
    int rc = lx_token(x, &t);
    if (rc != OK) return rc;
    if (t.kind == K_OBJECT || t.kind == K_ARRAY) return DECLINE;
    if (t.kind == K_FLOAT && is_integral(f->type)) return DECLINE;
    if (t.kind == K_STRING && f->type == T_STRING && !in_packed) {
        /* parse_scalar's string case, without making the str */
        if (!force && !(f->flags & F_PRESENCE) && t.n == 0) return OK;
        if (buf_tag(b, f->number, 2) != OK || buf_varint(b, (uint64_t)t.n) != OK ||
            buf_raw(b, t.s, t.n) != OK)
            return ERR;
        return OK;
    }
    PyObject *v;
    rc = tok_object(&t, &v);
    if (rc != OK) return rc;
    rc = parse_scalar(ctx, b, f, v, in_packed, force);
    Py_DECREF(v);
    return rc;
}

/* --- messages ------------------------------------------------------------------------------ */

static int tx_sub(Ctx *ctx, Lx *x, Buf *b, uint32_t number, Table *t, int depth) {
    if (buf_tag(b, number, 2) != OK) return ERR;
    Py_ssize_t start = buf_open(b);
    int rc = tx_message(ctx, x, b, t, depth);
    if (rc != OK) return rc;
    return buf_close(b, start);
}

static int tx_repeated(Ctx *ctx, Lx *x, Buf *b, const Field *f, int depth) {
    if (lx_expect(x, '[') != OK) return DECLINE;
    int more, rc, first = 1;
    if (f->type == T_MESSAGE) {
        int allow_null = f->sub->wkt == W_VALUE;
        while ((rc = lx_item(x, first, &more)) == OK && more) {
            first = 0;
            if ((lx_peek(x) == 'n' && !allow_null) || depth >= MAX_DEPTH) return DECLINE;
            rc = tx_sub(ctx, x, b, f->number, f->sub, depth + 1);
            if (rc != OK) return rc;
        }
        return rc;
    }
    if (f->flags & F_PACKED) {
        Py_ssize_t mark = b->len;
        if (buf_tag(b, f->number, 2) != OK) return ERR;
        Py_ssize_t start = buf_open(b);
        while ((rc = lx_item(x, first, &more)) == OK && more) {
            first = 0;
            rc = tx_scalar(ctx, x, b, f, 1, 1);
            if (rc != OK) return rc;
        }
        if (rc != OK) return rc;
        if (first) { /* [] writes nothing */
            b->len = mark;
            return OK;
        }
        return buf_close(b, start);
    }
    while ((rc = lx_item(x, first, &more)) == OK && more) {
        first = 0;
        rc = tx_scalar(ctx, x, b, f, 0, 1);
        if (rc != OK) return rc;
    }
    return rc;
}

/* One map entry: key (read as parse.c's map_key reads it), then value. */
static int tx_entry(Ctx *ctx, Lx *x, Buf *b, const Field *f, const Tok *key, int depth,
                    Seg *seg) {
    const Field *kf = &f->sub->fields[0], *vf = &f->sub->fields[1];
    Entry e = {0};
    PyObject *keyobj = NULL;
    int rc = OK;
    if (kf->type == T_STRING) {
        e.s = key->s;
        e.n = key->n;
    } else {
        keyobj = PyUnicode_DecodeUTF8(key->s, key->n, NULL);
        if (keyobj == NULL) return ERR;
        rc = map_key(kf, keyobj, &e);
    }
    seg->start = b->len;
    Py_ssize_t start = 0, key_end = 0;
    if (rc == OK) {
        if (buf_tag(b, f->number, 2) != OK) rc = ERR;
        start = buf_open(b);
        if (rc == OK) rc = write_map_key(b, kf, &e);
        key_end = b->len;
    }
    seg->kn = e.n;
    seg->u = e.u;
    Py_XDECREF(keyobj);
    if (rc != OK) return rc;
    if (vf->type == T_MESSAGE) {
        if (depth + 2 > MAX_DEPTH) return DECLINE;
        rc = tx_sub(ctx, x, b, 2, vf->sub, depth + 2);
    } else {
        rc = tx_scalar(ctx, x, b, vf, 0, 1);
    }
    if (rc != OK) return rc;
    seg->rel = b->len - key_end;
    rc = buf_close(b, start);
    seg->end = b->len;
    return rc;
}

static int tx_map(Ctx *ctx, Lx *x, Buf *b, const Field *f, int depth) {
    if (lx_expect(x, '{') != OK) return DECLINE;
    Segs segs;
    segs_init(&segs);
    Tok key;
    int more, rc, first = 1;
    while ((rc = lx_member(x, first, &key, &more)) == OK && more) {
        first = 0;
        Seg *seg = segs_add(&segs);
        if (seg == NULL) {
            rc = ERR;
            break;
        }
        rc = tx_entry(ctx, x, b, f, &key, depth, seg);
        if (rc != OK) break;
    }
    if (rc == OK) rc = sort_entries(b, &segs, f->sub->fields[0].type == T_STRING);
    segs_free(&segs);
    return rc;
}

static int tx_field(Ctx *ctx, Lx *x, Buf *b, const Field *f, int depth) {
    if (lx_peek(x) == 'n') {
        Tok t;
        int rc = lx_token(x, &t);
        if (rc != OK) return rc;
        return parse_null(ctx, b, f);
    }
    if (f->flags & F_MAP) return tx_map(ctx, x, b, f, depth);
    if (f->flags & F_REPEATED) return tx_repeated(ctx, x, b, f, depth);
    if (f->type == T_MESSAGE) {
        if (depth >= MAX_DEPTH) return DECLINE;
        return tx_sub(ctx, x, b, f->number, f->sub, depth + 1);
    }
    return tx_scalar(ctx, x, b, f, 0, 0);
}

/* Whether the str k is the n bytes at s (for ASCII str: no UTF-8 made). */
static inline int same_key(PyObject *k, const char *s, Py_ssize_t n) {
    if (!PyUnicode_IS_COMPACT_ASCII(k) || PyUnicode_GET_LENGTH(k) != n) return 0;
    const char *d = PyUnicode_DATA(k);
    return n == 0 || (d[0] == s[0] && memcmp(d, s, (size_t)n) == 0);
}

/* The field a key names (DECLINE: none). Writers put keys in number order under their JSON
 * names, mostly: the fields from *cursor on are tried first, without making a str, unless
 * a JSON name is some other field's key (TF_KEY_CLASH: the key table has the last word). */
static int field_index(Table *t, const Tok *key, int *cursor, int *index) {
    if (!(t->flags & TF_KEY_CLASH)) {
        for (int j = *cursor; j < t->nfields; j++) {
            if (same_key(t->fields[j].json_key, key->s, key->n)) {
                *index = j;
                *cursor = j + 1;
                return OK;
            }
        }
    }
    PyObject *k = PyUnicode_DecodeUTF8(key->s, key->n, NULL);
    if (k == NULL) return ERR;
    PyObject *found = PyDict_GetItemWithError(t->keys, k);
    Py_DECREF(k);
    if (found == NULL) return PyErr_Occurred() ? ERR : DECLINE;
    *index = (int)PyLong_AsSsize_t(found);
    return OK;
}

/* The members of a regular message's object, its '{' consumed (and, in an Any, its
 * "@type" member: first is then 0). parse_message's checks, in its order. */
int tx_fields(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth, int first) {
    int nf = t->nfields;
    unsigned char small[SMALL], *seen = small;
    if (nf > SMALL) {
        seen = PyMem_Calloc((size_t)nf, 1);
        if (seen == NULL) {
            PyErr_NoMemory();
            return ERR;
        }
    } else {
        memset(small, 0, sizeof(small));
    }
    Segs segs;
    segs_init(&segs);
    uint64_t chosen = 0, null_set = 0;
    int sorted = 1, more, rc, cursor = 0;
    Tok key;
    while ((rc = lx_member(x, first, &key, &more)) == OK && more) {
        first = 0;
        int i;
        rc = field_index(t, &key, &cursor, &i);
        if (rc != OK) break; /* unknown keys, "@type" again, extensions: decline */
        if (seen[i]) {      /* given twice, by name and JSON name */
            rc = DECLINE;
            break;
        }
        seen[i] = 1;
        const Field *f = &t->fields[i];
        if (f->oneof >= 0) {
            uint64_t bit = (uint64_t)1 << f->oneof;
            if (lx_peek(x) == 'n') {
                if (sets_on_null(f)) {
                    if (null_set & bit) {
                        rc = DECLINE;
                        break;
                    }
                    null_set |= bit;
                }
            } else {
                if (chosen & bit) {
                    rc = DECLINE;
                    break;
                }
                chosen |= bit;
            }
        }
        Seg *seg = segs_add(&segs);
        if (seg == NULL) {
            rc = ERR;
            break;
        }
        seg->index = i;
        seg->start = b->len;
        rc = tx_field(ctx, x, b, f, depth);
        seg->end = b->len;
        if (rc != OK) break;
        if (segs.n > 1 && segs.items[segs.n - 2].index > i) sorted = 0;
    }
    if (rc == OK && (chosen & null_set)) rc = DECLINE;
    if (rc == OK && !sorted) {
        qsort(segs.items, (size_t)segs.n, sizeof(Seg), cmp_index);
        rc = reorder(b, &segs);
    }
    segs_free(&segs);
    if (seen != small) PyMem_Free(seen);
    return rc;
}

/* parse_message, from text. */
int tx_message(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth) {
    if (depth > MAX_DEPTH || (t->flags & TF_UNSUPPORTED) || !t->ready) return DECLINE;
    if (t->wkt != W_NONE) return tx_wkt(ctx, x, b, t, depth);
    if (lx_expect(x, '{') != OK) return DECLINE;
    return tx_fields(ctx, x, b, t, depth, 1);
}

int parse_text(Ctx *ctx, Buf *b, Table *t, const char *s, Py_ssize_t n) {
    Lx x = {(const uint8_t *)s, (const uint8_t *)s + n, {0}};
    int rc = tx_message(ctx, &x, b, t, 1);
    if (rc == OK && lx_peek(&x) != -1) rc = DECLINE; /* something after the value */
    buf_free(&x.str);
    return rc;
}
