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
 * entries and Struct fields likewise, sorted as parse.c sorts them.
 */
#include "lex.h"
#include <math.h>
#include <string.h>

typedef struct {
    Py_ssize_t start, end; /* its bytes in the buffer */
    int index;             /* a field: its index (number order) */
    Py_ssize_t rel;        /* a map entry: its key ends rel bytes before its end */
    Py_ssize_t kn;         /* ... and is kn bytes long */
    uint64_t u;            /* ... or an integer key's value */
    const char *k;
} Seg;

/* A growable array of segments, on the stack while small. */
#define SMALL 32
typedef struct {
    Seg *items, small[SMALL];
    Py_ssize_t n, cap;
} Segs;

static void segs_init(Segs *s) {
    s->items = s->small;
    s->n = 0;
    s->cap = SMALL;
}
static void segs_free(Segs *s) {
    if (s->items != s->small) PyMem_Free(s->items);
}
static Seg *segs_add(Segs *s) {
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

/* Sort map entries (or Struct fields) by key as parse.c does; a key twice declines. */
static int sort_entries(Buf *b, Segs *s, int by_string) {
    for (Py_ssize_t i = 0; i < s->n; i++) s->items[i].k = b->data + s->items[i].end - s->items[i].rel - s->items[i].kn;
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

static int tx_scalar(Ctx *ctx, Lx *x, Buf *b, const Field *f, int in_packed, int force) {
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

static int tx_message(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth);
static int tx_fields(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth, int first);
static int tx_value(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth);

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
static int tx_fields(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth, int first) {
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

/* --- well-known types --------------------------------------------------------------------- */

static int tx_list(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth) {
    if (lx_expect(x, '[') != OK) return DECLINE;
    Table *value_table = t->fields[0].sub;
    int more, rc, first = 1;
    while ((rc = lx_item(x, first, &more)) == OK && more) {
        first = 0;
        if (depth + 1 > MAX_DEPTH) return DECLINE;
        if (buf_tag(b, 1, 2) != OK) return ERR;
        Py_ssize_t start = buf_open(b);
        rc = tx_value(ctx, x, b, value_table, depth + 1);
        if (rc != OK) return rc;
        if (buf_close(b, start) != OK) return ERR;
    }
    return rc;
}

static int tx_struct(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth) {
    if (lx_expect(x, '{') != OK) return DECLINE;
    Table *value_table = t->fields[0].sub->fields[1].sub;
    Segs segs;
    segs_init(&segs);
    Tok key;
    int more, rc, first = 1;
    while ((rc = lx_member(x, first, &key, &more)) == OK && more) {
        first = 0;
        if (depth + 2 > MAX_DEPTH) {
            rc = DECLINE;
            break;
        }
        Seg *seg = segs_add(&segs);
        if (seg == NULL) {
            rc = ERR;
            break;
        }
        seg->start = b->len;
        seg->kn = key.n;
        if (buf_tag(b, 1, 2) != OK) {
            rc = ERR;
            break;
        }
        Py_ssize_t entry = buf_open(b);
        if (buf_tag(b, 1, 2) != OK || buf_varint(b, (uint64_t)key.n) != OK ||
            buf_raw(b, key.s, key.n) != OK || buf_tag(b, 2, 2) != OK) {
            rc = ERR;
            break;
        }
        Py_ssize_t key_end = b->len - 1, inner = buf_open(b);
        rc = tx_value(ctx, x, b, value_table, depth + 2);
        if (rc == OK) rc = buf_close(b, inner);
        if (rc != OK) break;
        seg->rel = b->len - key_end;
        rc = buf_close(b, entry);
        seg->end = b->len;
        if (rc != OK) break;
    }
    if (rc == OK) rc = sort_entries(b, &segs, 1);
    segs_free(&segs);
    return rc;
}

static Table *value_sub(Table *t, uint32_t number) {
    for (int i = 0; i < t->nfields; i++)
        if (t->fields[i].number == number) return t->fields[i].sub;
    return NULL;
}

/* wkt.c's parse_value, from a token. */
static int tx_value(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth) {
    if (depth > MAX_DEPTH) return DECLINE;
    Tok tok;
    int rc = lx_token(x, &tok);
    if (rc != OK) return rc;
    double d;
    uint64_t bits;
    switch (tok.kind) {
    case K_NULL:
        return buf_tag(b, 1, 0) != OK || buf_varint(b, 0) != OK ? ERR : OK;
    case K_STRING:
        if (buf_tag(b, 3, 2) != OK || buf_varint(b, (uint64_t)tok.n) != OK ||
            buf_raw(b, tok.s, tok.n) != OK)
            return ERR;
        return OK;
    case K_TRUE: case K_FALSE:
        return buf_tag(b, 4, 0) != OK || buf_varint(b, tok.kind == K_TRUE) != OK ? ERR : OK;
    case K_INT: case K_FLOAT:
        /* an int as PyLong_AsDouble converts it: at most 18 digits, so the cast rounds
         * alike (to nearest, ties to even) */
        if (tok.kind == K_INT) d = (double)tok.i;
        else if ((rc = lx_double(&tok, &d)) != OK) return rc;
        if (!isfinite(d)) return DECLINE;
        memcpy(&bits, &d, 8);
        return buf_tag(b, 2, 1) != OK || buf_fixed64(b, bits) != OK ? ERR : OK;
    default: break;
    }
    uint32_t number = tok.kind == K_OBJECT ? 5 : 6;
    if (depth + 1 > MAX_DEPTH) return DECLINE;
    Table *sub = value_sub(t, number);
    if (sub == NULL) return DECLINE;
    if (buf_tag(b, number, 2) != OK) return ERR;
    Py_ssize_t start = buf_open(b);
    rc = number == 5 ? tx_message(ctx, x, b, sub, depth + 1) : tx_list(ctx, x, b, sub, depth + 1);
    if (rc != OK) return rc;
    return buf_close(b, start);
}

static int key_is(const Tok *key, const char *word) {
    size_t n = strlen(word);
    return key->n == (Py_ssize_t)n && memcmp(key->s, word, n) == 0;
}

/* The payload of an Any of type inner: the rest of its object after "@type". */
static int tx_payload(Ctx *ctx, Lx *x, Buf *b, Table *inner, int depth) {
    Tok key;
    int more, rc;
    if (inner->wkt == W_NONE) {
        if (depth + 1 > MAX_DEPTH || (inner->flags & TF_UNSUPPORTED) || !inner->ready)
            return DECLINE;
        return tx_fields(ctx, x, b, inner, depth + 1, 0);
    }
    rc = lx_member(x, 0, &key, &more);
    if (rc == OK && (!more || !key_is(&key, "value") || depth + 1 > MAX_DEPTH)) rc = DECLINE;
    if (rc == OK) rc = tx_message(ctx, x, b, inner, depth + 1);
    if (rc == OK) rc = lx_member(x, 0, &key, &more);
    if (rc == OK && more) rc = DECLINE; /* a key besides "@type" and "value" */
    return rc;
}

static int tx_any(Ctx *ctx, Lx *x, Buf *b, int depth) {
    if (lx_expect(x, '{') != OK) return DECLINE;
    Tok key, tok;
    int more;
    int rc = lx_member(x, 1, &key, &more);
    if (rc != OK || !more) return rc; /* {}: the empty Any */
    if (!key_is(&key, "@type")) return DECLINE;
    rc = lx_token(x, &tok);
    if (rc != OK) return rc;
    if (tok.kind != K_STRING) return DECLINE;
    PyObject *url = PyUnicode_DecodeUTF8(tok.s, tok.n, NULL);
    if (url == NULL) return ERR;
    Table *inner = resolve_type(ctx, url, &rc);
    Py_ssize_t n = 0;
    const char *s = rc == OK ? PyUnicode_AsUTF8AndSize(url, &n) : NULL;
    if (rc == OK && s == NULL) rc = ERR;
    if (rc == OK) {
        Buf payload = {0};
        rc = tx_payload(ctx, x, &payload, inner, depth);
        if (rc == OK) rc = write_any(ctx, b, inner, s, n, &payload);
        buf_free(&payload);
    }
    Py_XDECREF(inner);
    Py_DECREF(url);
    return rc;
}

static int tx_string_wkt(Lx *x, Buf *b, int wkt) {
    Tok tok;
    int rc = lx_token(x, &tok);
    if (rc != OK) return rc;
    if (tok.kind != K_STRING || !tok.ascii) return DECLINE;
    switch (wkt) {
    case W_TIMESTAMP: return parse_timestamp_text(b, tok.s, tok.n);
    case W_DURATION: return parse_duration_text(b, tok.s, tok.n);
    default: return parse_field_mask_text(b, tok.s, tok.n);
    }
}

/* parse_message, from text. */
static int tx_message(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth) {
    if (depth > MAX_DEPTH || (t->flags & TF_UNSUPPORTED) || !t->ready) return DECLINE;
    switch (t->wkt) {
    case W_NONE:
        if (lx_expect(x, '{') != OK) return DECLINE;
        return tx_fields(ctx, x, b, t, depth, 1);
    case W_TIMESTAMP: case W_DURATION: case W_FIELD_MASK: return tx_string_wkt(x, b, t->wkt);
    case W_STRUCT: return tx_struct(ctx, x, b, t, depth);
    case W_LIST_VALUE: return tx_list(ctx, x, b, t, depth);
    case W_VALUE: return tx_value(ctx, x, b, t, depth);
    case W_WRAPPER: return tx_scalar(ctx, x, b, &t->fields[0], 0, 0);
    case W_ANY: return tx_any(ctx, x, b, depth);
    default: return DECLINE;
    }
}

int parse_text(Ctx *ctx, Buf *b, Table *t, const char *s, Py_ssize_t n) {
    Lx x = {(const uint8_t *)s, (const uint8_t *)s + n, {0}};
    int rc = tx_message(ctx, &x, b, t, 1);
    if (rc == OK && lx_peek(&x) != -1) rc = DECLINE; /* something after the value */
    buf_free(&x.str);
    return rc;
}
