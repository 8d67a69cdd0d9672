/* JSON -> binary wire form: the parse driver. It reads JSON values from a source (lex.c:
 * text, walk.c: Python values) and writes the wire bytes the Python codec's message would
 * serialize to, deterministically: fields in number order and map entries in the order
 * protobuf's deterministic serializer writes them, so that an Any packs the bytes the
 * Python codec packs. Every check mirrors the Python decoder (decode.py, scalars.py,
 * wkt.py); where it would refuse, or where the core is unsure, this declines.
 *
 * Fields, map entries and Struct members are written as their keys come and put in order
 * when their object ends (a segment per member, on a stack shared by all levels).
 */
#include "native.h"
#include <math.h>

typedef struct {
    Py_ssize_t start, end; /* the member's bytes */
    Py_ssize_t rel, kn;    /* a map entry: its string key is kn bytes ending rel before end */
    uint64_t u;            /* a map entry: its integer key as written */
    int index;             /* a field: its index (number order) */
    const char *k;
} Seg;

typedef struct {
    Ctx *ctx;
    Src *src;
    Buf *b;
    Seg *segs;
    Py_ssize_t nsegs, cap;
    Buf skipped; /* per level, the keys passed over: (length, bytes) each */
} P;

/* The text of an Ev as a new str (its own object if it has one). */
static PyObject *ev_str(const Ev *ev) {
    return ev->obj ? Py_NewRef(ev->obj) : PyUnicode_DecodeUTF8(ev->s, ev->n, NULL);
}

static int is(const Ev *key, const char *word) {
    return key->n == (Py_ssize_t)strlen(word) && memcmp(key->s, word, (size_t)key->n) == 0;
}

/* --- scalars ----------------------------------------------------------------------------- */

typedef struct {
    uint64_t bits; /* varint or fixed value as written; strings: their length */
    const char *s; /* string and bytes contents */
    Py_ssize_t n;
} Scalar;

/* Digits (optionally after '-') of ASCII text as an integer; DECLINE when not plain. */
static int integer_text(const Ev *ev, int *neg, uint64_t *mag) {
    const char *s = ev->s;
    Py_ssize_t i = *neg = ev->n > 0 && s[0] == '-';
    if (!ev->ascii || i == ev->n || ev->n - i > 20) return DECLINE;
    for (*mag = 0; i < ev->n; i++) {
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (s[i] < '0' || s[i] > '9' || *mag > (UINT64_MAX - digit) / 10) return DECLINE;
        *mag = *mag * 10 + digit;
    }
    return OK;
}

/* An integer field's value, as scalars._integer_decoder reads it: a number with an integral
 * value (7.0 too), or its decimal text. */
static int to_integer(const Ev *ev, int64_t lo, int64_t hi, uint64_t uhi, uint64_t *out) {
    int neg;
    uint64_t mag;
    if (ev->kind == K_INT && !ev->big) {
        neg = ev->neg;
        mag = ev->mag;
    } else if (ev->kind == K_FLOAT) {
        double d = ev->d;
        if (!isfinite(d) || d != floor(d) || !(d > -18446744073709551616.0 && d < 18446744073709551616.0))
            return DECLINE;
        neg = d < 0;
        mag = (uint64_t)fabs(d);
    } else if (ev->kind == K_STRING) {
        if (integer_text(ev, &neg, &mag) != OK) return DECLINE;
    } else {
        return DECLINE; /* bool, null, containers: the Python codec decides */
    }
    if (lo < 0) { /* signed */
        if (neg ? mag > (uint64_t)0 - (uint64_t)lo : mag > (uint64_t)hi) return DECLINE;
        *out = neg ? (uint64_t)0 - mag : mag;
    } else {
        if ((neg && mag) || mag > uhi) return DECLINE;
        *out = mag;
    }
    return OK;
}

/* -?digits(.digits)?([eE][+-]?digits)? : what scalars._NUMBER_TEXT admits. */
static int number_text(const char *s, Py_ssize_t n) {
    Py_ssize_t i = s[0] == '-', start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    if (i == start) return 0;
    if (i < n && s[i] == '.') {
        start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == start) return 0;
    }
    if (i < n && (s[i] | 0x20) == 'e') {
        i += i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-') ? 2 : 1;
        start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == start) return 0;
    }
    return i == n;
}

/* A float or double field's value, as scalars._float_decoder reads it. */
static int to_double(const Ev *ev, int single, double *out) {
    double d;
    if (ev->kind == K_FLOAT || (ev->kind == K_INT && ev->big)) {
        d = ev->d;
    } else if (ev->kind == K_INT) {
        d = ev->neg ? -(double)ev->mag : (double)ev->mag; /* correctly rounded, as Python's */
    } else if (ev->kind == K_STRING && ev->ascii && ev->n > 0) {
        static const char *const SPECIAL[] = {"NaN", "Infinity", "-Infinity"};
        static const double VALUE[] = {Py_NAN, Py_HUGE_VAL, -Py_HUGE_VAL};
        for (int i = 0; i < 3; i++)
            if (is(ev, SPECIAL[i])) return *out = VALUE[i], OK;
        if (!number_text(ev->s, ev->n)) return DECLINE;
        char *stop; /* the text is followed by '"' or NUL: the conversion stops at its end */
        d = PyOS_string_to_double(ev->s, &stop, NULL);
        if ((d == -1.0 && PyErr_Occurred()) || stop != ev->s + ev->n) {
            PyErr_Clear();
            return DECLINE;
        }
    } else {
        return DECLINE;
    }
    if (isinf(d) || (single && !isnan(d) && isinf((float)d))) return DECLINE;
    *out = d;
    return OK;
}

static int to_enum(const Field *f, const Ev *ev, uint64_t *out) {
    long number;
    if (ev->kind == K_STRING) {
        PyObject *name = ev_str(ev);
        if (name == NULL) return ERR;
        PyObject *found = PyDict_GetItemWithError(f->enum_numbers, name);
        Py_DECREF(name);
        if (found == NULL) return PyErr_Occurred() ? ERR : DECLINE;
        number = PyLong_AsLong(found);
        if (number == -1 && PyErr_Occurred()) return ERR;
    } else {
        uint64_t bits;
        if (to_integer(ev, INT32_MIN, INT32_MAX, 0, &bits) != OK)
            return DECLINE;
        number = (long)(int32_t)(uint32_t)bits;
        if (f->flags & F_ENUM_CLOSED) {
            PyObject *key = PyLong_FromLong(number);
            if (key == NULL) return ERR;
            PyObject *name = PyDict_GetItemWithError(f->enum_names, key);
            Py_DECREF(key);
            if (name == NULL) return PyErr_Occurred() ? ERR : DECLINE;
        }
    }
    *out = (uint64_t)(int64_t)number;
    return OK;
}

/* The value of (an element of) field f as written on the wire. */
static int to_scalar(const Field *f, const Ev *ev, Scalar *out) {
    double d;
    int rc;
    switch (f->type) {
    case T_INT32: case T_SINT32: case T_SFIXED32:
        return to_integer(ev, INT32_MIN, INT32_MAX, 0, &out->bits);
    case T_INT64: case T_SINT64: case T_SFIXED64:
        return to_integer(ev, INT64_MIN, INT64_MAX, 0, &out->bits);
    case T_UINT32: case T_FIXED32: return to_integer(ev, 0, 0, UINT32_MAX, &out->bits);
    case T_UINT64: case T_FIXED64: return to_integer(ev, 0, 0, UINT64_MAX, &out->bits);
    case T_DOUBLE: case T_FLOAT:
        if ((rc = to_double(ev, f->type == T_FLOAT, &d)) != OK) return rc;
        if (f->type == T_DOUBLE) {
            memcpy(&out->bits, &d, 8);
        } else {
            float x = (float)d;
            uint32_t b;
            memcpy(&b, &x, 4);
            out->bits = b;
        }
        return OK;
    case T_BOOL:
        if (ev->kind != K_TRUE && ev->kind != K_FALSE) return DECLINE;
        out->bits = ev->kind == K_TRUE;
        return OK;
    case T_STRING: case T_BYTES:
        /* bytes: base64 text, decoded when written; empty text is the only text that
         * decodes to nothing */
        if (ev->kind != K_STRING || (f->type == T_BYTES && !ev->ascii)) return DECLINE;
        out->s = ev->s;
        out->n = ev->n;
        out->bits = (uint64_t)ev->n;
        return OK;
    case T_ENUM: return to_enum(f, ev, &out->bits);
    default: return DECLINE;
    }
}

/* One element's value (no tag); zigzag and sizes as the wire format has them. */
static int write_value(Buf *b, const Field *f, const Scalar *s) {
    switch (f->type) {
    case T_SINT32: {
        uint32_t x = (uint32_t)s->bits;
        return buf_varint(b, (x << 1) ^ (0u - (x >> 31)));
    }
    case T_SINT64: return buf_varint(b, (s->bits << 1) ^ (0 - (s->bits >> 63)));
    case T_FIXED32: case T_SFIXED32: case T_FLOAT: return buf_fixed(b, s->bits, 4);
    case T_FIXED64: case T_SFIXED64: case T_DOUBLE: return buf_fixed(b, s->bits, 8);
    case T_STRING:
        if (buf_varint(b, (uint64_t)s->n) != OK) return ERR;
        return buf_raw(b, s->s, s->n);
    case T_BYTES: {
        Py_ssize_t start = buf_open(b);
        int rc = base64_decode_into(b, s->s, s->n);
        return rc == OK ? buf_close(b, start) : rc;
    }
    default: return buf_varint(b, s->bits); /* int32 and enums sign-extend to ten bytes */
    }
}

enum { PLAIN, FORCE, PACKED };

/* One scalar field (or element): tag and value. Implicit-presence fields holding their
 * default are not written unless FORCE (map entries, repeated elements). */
static int p_scalar(P *p, const Field *f, const Ev *ev, int mode) {
    Scalar s = {0};
    Buf *b = p->b;
    int rc = to_scalar(f, ev, &s);
    if (rc != OK) return rc;
    if (mode == PACKED) return write_value(b, f, &s);
    int implicit = mode == PLAIN && !(f->flags & F_PRESENCE);
    Py_ssize_t mark = b->len;
    if (implicit && s.bits == 0 && f->type != T_BYTES) return OK; /* -0.0 is written */
    if (buf_tag(b, f->number, wire_type(f->type)) != OK) return ERR;
    Py_ssize_t after_tag = b->len;
    rc = write_value(b, f, &s);
    if (rc == OK && implicit && b->len == after_tag + 1 && f->type == T_BYTES)
        b->len = mark; /* decoded to no bytes: the default, not written */
    return rc;
}

/* --- messages ------------------------------------------------------------------------------ */

static int p_message(P *p, Table *t, const Ev *ev, int depth, int in_any);

static int p_sub(P *p, uint32_t number, Table *t, const Ev *ev, int depth) {
    if (buf_tag(p->b, number, 2) != OK) return ERR;
    Py_ssize_t start = buf_open(p->b);
    int rc = p_message(p, t, ev, depth, 0);
    return rc == OK ? buf_close(p->b, start) : rc;
}

static inline Py_ssize_t push_seg(P *p) {
    if (p->nsegs == p->cap && vec_reserve((void **)&p->segs, &p->cap, p->nsegs + 1, sizeof(Seg)) != OK)
        return -1;
    p->segs[p->nsegs] = (Seg){.start = p->b->len};
    return p->nsegs++;
}

static int seg_by_index(const void *a, const void *b) {
    return (((const Seg *)a)->index > ((const Seg *)b)->index) -
           (((const Seg *)a)->index < ((const Seg *)b)->index);
}

/* The order upb's deterministic serializer writes map entries in (the Python codec's packed
 * Any bytes have it): strings by their bytes, a string before its own prefixes ("ab" before
 * "a"); integers and bools by their 64-bit pattern, descending. Found by experiment, pinned
 * by the tests, and probed against the runtime (plan.map_order_matches). */
static int seg_by_string(const void *a, const void *b) {
    const Seg *x = a, *y = b;
    Py_ssize_t n = x->kn < y->kn ? x->kn : y->kn;
    int c = n ? memcmp(x->k, y->k, (size_t)n) : 0;
    return c ? c : (x->kn < y->kn) - (x->kn > y->kn);
}
static int seg_by_integer(const void *a, const void *b) {
    return (((const Seg *)a)->u < ((const Seg *)b)->u) - (((const Seg *)a)->u > ((const Seg *)b)->u);
}

/* Sort the segments from base on (map entries: their keys point into the buffer, which has
 * stopped moving), decline when two compare equal (a key or field given twice), and put
 * their bytes (contiguous) in that order. */
static int sort_segs(P *p, Py_ssize_t base, int (*cmp)(const void *, const void *)) {
    Py_ssize_t n = p->nsegs - base, at = PY_SSIZE_T_MAX, total = 0;
    if (n == 0) return OK; /* (and segs may be NULL: no pointer into it) */
    Seg *s = p->segs + base;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i].kn) s[i].k = p->b->data + s[i].end - s[i].rel - s[i].kn;
        at = s[i].start < at ? s[i].start : at;
        total += s[i].end - s[i].start;
    }
    Py_ssize_t i = 1;
    while (i < n && cmp(&s[i - 1], &s[i]) < 0) i++;
    if (i == n) return OK; /* in order already, as writers mostly put them */
    qsort(s, (size_t)n, sizeof(Seg), cmp);
    for (i = 1; i < n; i++)
        if (cmp(&s[i - 1], &s[i]) == 0) return DECLINE;
    if (total == 0) return OK;
    char *tmp = PyMem_Malloc((size_t)total), *o = tmp;
    if (tmp == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        memcpy(o, p->b->data + s[i].start, (size_t)(s[i].end - s[i].start));
        o += s[i].end - s[i].start;
    }
    memcpy(p->b->data + at, tmp, (size_t)total);
    PyMem_Free(tmp);
    return OK;
}

static int p_repeated(P *p, const Field *f, const Ev *ev, int depth) {
    if (ev->kind != K_ARRAY) return DECLINE;
    Buf *b = p->b;
    int packed = (f->flags & F_PACKED) && f->type != T_MESSAGE, more, rc, count = 0;
    Py_ssize_t mark = b->len, start = 0;
    if (packed) {
        if (buf_tag(b, f->number, 2) != OK) return ERR;
        start = buf_open(b);
    }
    Ev v;
    while ((rc = p->src->item(p->src, &more)) == OK && more && (rc = p->src->value(p->src, &v)) == OK) {
        count++;
        if (f->type != T_MESSAGE) rc = p_scalar(p, f, &v, packed ? PACKED : FORCE);
        else rc = depth >= MAX_DEPTH ? DECLINE : p_sub(p, f->number, f->sub, &v, depth + 1);
        if (rc != OK) return rc;
    }
    if (rc != OK || !packed) return rc;
    if (count == 0) { /* [] writes nothing */
        b->len = mark;
        return OK;
    }
    return buf_close(b, start);
}

/* A map key, read from its JSON string as scalars.decode_map_key reads it; only the
 * canonical spelling of a number is taken ("7", not "07", "-0" or "+7"), so that two keys
 * never name one entry. */
static int map_key(const Field *kf, const Ev *key, Scalar *k) {
    const char *s = key->s;
    Py_ssize_t n = key->n, sign = n > 0 && s[0] == '-';
    *k = (Scalar){(uint64_t)n, s, n};
    if (kf->type == T_STRING) return OK;
    if (kf->type == T_BOOL) {
        k->bits = is(key, "true");
        return k->bits || is(key, "false") ? OK : DECLINE;
    }
    if (n == sign || (s[sign] == '0' && (n > sign + 1 || sign))) return DECLINE;
    return to_scalar(kf, key, k);
}

static int p_map(P *p, const Field *f, const Ev *ev, int depth) {
    if (ev->kind != K_OBJECT || f->sub->nfields != 2) return DECLINE; /* (an entry's table) */
    const Field *kf = &f->sub->fields[0], *vf = &f->sub->fields[1];
    Buf *b = p->b;
    Py_ssize_t base = p->nsegs;
    Ev key, v;
    Scalar k;
    int more, rc;
    while ((rc = p->src->member(p->src, &key, &more)) == OK && more) {
        Py_ssize_t i = push_seg(p);
        if (i < 0) return ERR;
        rc = map_key(kf, &key, &k);
        if (rc == OK && buf_tag(b, f->number, 2) != OK) rc = ERR;
        Py_ssize_t start = buf_open(b);
        if (rc == OK && buf_tag(b, 1, wire_type(kf->type)) != OK) rc = ERR;
        if (rc == OK) rc = write_value(b, kf, &k);
        Py_ssize_t key_end = b->len;
        if (rc == OK) rc = p->src->value(p->src, &v);
        if (rc == OK && vf->type == T_MESSAGE)
            rc = depth + 2 > MAX_DEPTH ? DECLINE : p_sub(p, 2, vf->sub, &v, depth + 2);
        else if (rc == OK)
            rc = p_scalar(p, vf, &v, FORCE);
        if (rc != OK) break;
        p->segs[i].rel = b->len - key_end;
        p->segs[i].kn = kf->type == T_STRING ? k.n : 0;
        p->segs[i].u = k.bits;
        rc = buf_close(b, start);
        p->segs[i].end = b->len;
        if (rc != OK) break;
    }
    if (rc == OK) rc = sort_segs(p, base, kf->type == T_STRING ? seg_by_string : seg_by_integer);
    p->nsegs = base;
    return rc;
}

/* A field given as JSON null: most fields stay unset; a Value holds null_value and a
 * NullValue enum field with presence holds 0 (compile._null_statement). */
static int sets_on_null(const Field *f) {
    return !(f->flags & F_REPEATED) && ((f->type == T_MESSAGE && f->sub->wkt == W_VALUE) ||
                                        (f->type == T_ENUM && (f->flags & F_NULL_ENUM)));
}

static int p_null(P *p, const Field *f) {
    if (!sets_on_null(f)) return OK;
    if (f->type == T_MESSAGE)
        return buf_tag(p->b, f->number, 2) == OK && buf_raw(p->b, "\x02\x08\x00", 3) == OK ? OK : ERR;
    if (!(f->flags & F_PRESENCE)) return OK;
    return buf_tag(p->b, f->number, 0) == OK && buf_varint(p->b, 0) == OK ? OK : ERR;
}

static int p_field(P *p, const Field *f, const Ev *ev, int depth) {
    if (ev->kind == K_NULL) return p_null(p, f);
    if (f->flags & F_MAP) return p_map(p, f, ev, depth);
    if (f->flags & F_REPEATED) return p_repeated(p, f, ev, depth);
    if (f->type == T_MESSAGE)
        return depth >= MAX_DEPTH ? DECLINE : p_sub(p, f->number, f->sub, ev, depth + 1);
    return p_scalar(p, f, ev, PLAIN);
}

/* The field a key names: OK, DECLINE (none) or ERR. Writers mostly put keys in number order
 * under their JSON names: the fields from *cursor on are tried first, by their bytes, unless
 * a JSON name is some other field's key (TF_KEY_CLASH: the key table has the last word). */
static int find_key(Table *t, const Ev *key, int *cursor, int *index) {
    if (!(t->flags & TF_KEY_CLASH)) {
        for (int j = *cursor; j < t->nfields; j++) {
            const Field *f = &t->fields[j];
            if (f->key_n == key->n && (key->n == 0 || f->key[0] == key->s[0]) &&
                memcmp(f->key, key->s, (size_t)key->n) == 0) {
                *index = j;
                *cursor = j + 1;
                return OK;
            }
        }
    }
    PyObject *k = ev_str(key);
    if (k == NULL) return ERR;
    PyObject *found = PyDict_GetItemWithError(t->keys, k);
    Py_DECREF(k);
    if (found == NULL) return PyErr_Occurred() ? ERR : DECLINE;
    *index = (int)PyLong_AsSsize_t(found); /* checked when the table was made */
    return OK;
}

/* Note a key passed over in this object (from base on), declining one seen before:
 * jsontext.loads would not make a plain dict of such text. */
static int passed_over(P *p, const char *key, Py_ssize_t n, Py_ssize_t base) {
    for (Py_ssize_t at = base, k; at < p->skipped.len; at += (Py_ssize_t)sizeof(k) + k) {
        memcpy(&k, p->skipped.data + at, sizeof(k));
        if (k == n && memcmp(p->skipped.data + at + sizeof(k), key, (size_t)n) == 0) return DECLINE;
    }
    return buf_raw(&p->skipped, &n, sizeof(n)) == OK && buf_raw(&p->skipped, key, n) == OK ? OK : ERR;
}

/* The members of a regular message's object (entered). any: an Any's payload, whose
 * "@type" is not a field, to pass over (1) or read already (2). The Python decoder's checks,
 * in its order. */
static int p_fields(P *p, Table *t, int depth, int any) {
    Src *src = p->src;
    Py_ssize_t base = p->nsegs, skipped = p->skipped.len;
    uint64_t chosen = 0, null_set = 0;
    int sorted = 1, cursor = 0, more, rc = any == 2 ? passed_over(p, "@type", 5, skipped) : OK, i;
    Ev key, v;
    while (rc == OK && (rc = src->member(src, &key, &more)) == OK && more) {
        rc = find_key(t, &key, &cursor, &i);
        if (rc == DECLINE) { /* not a field: "@type" in an Any, or an unknown key */
            if (!(any && is(&key, "@type")) &&
                (!p->ctx->ignore_unknown || key.n == 0 || key.s[0] == '['))
                break;
            if ((rc = passed_over(p, key.s, key.n, skipped)) != OK || (rc = src->skip(src)) != OK)
                break;
            continue;
        }
        if (rc != OK || (rc = src->value(src, &v)) != OK) break;
        const Field *f = &t->fields[i];
        if (f->oneof >= 0) {
            uint64_t bit = (uint64_t)1 << f->oneof;
            /* null sets some members without choosing them: with another member present,
             * the order of the keys would decide; that is left to Python */
            uint64_t *set = v.kind != K_NULL ? &chosen : sets_on_null(f) ? &null_set : NULL;
            if (set != NULL && (*set & bit)) {
                rc = DECLINE;
                break;
            }
            if (set != NULL) *set |= bit;
        }
        if (p->nsegs > base && p->segs[p->nsegs - 1].index >= i) sorted = 0;
        Py_ssize_t k = push_seg(p);
        if (k < 0) return ERR;
        p->segs[k].index = i;
        rc = p_field(p, f, &v, depth);
        p->segs[k].end = p->b->len;
        if (rc != OK) break;
    }
    if (rc == OK && (chosen & null_set)) rc = DECLINE;
    if (rc == OK && !sorted) rc = sort_segs(p, base, seg_by_index); /* a field twice declines */
    p->nsegs = base;
    p->skipped.len = skipped;
    return rc;
}

/* --- well-known types ------------------------------------------------------------------------ */

/* Value: 1 null_value, 2 number_value, 3 string_value, 4 bool_value, 5 struct_value,
 * 6 list_value. */
static int p_value(P *p, Table *t, const Ev *ev, int depth) {
    Buf *b = p->b;
    double d;
    uint64_t bits;
    if (depth > MAX_DEPTH) return DECLINE;
    switch (ev->kind) {
    case K_NULL: return buf_raw(b, "\x08\x00", 2);
    case K_STRING:
        if (buf_tag(b, 3, 2) != OK || buf_varint(b, (uint64_t)ev->n) != OK) return ERR;
        return buf_raw(b, ev->s, ev->n);
    case K_TRUE: case K_FALSE: return buf_raw(b, ev->kind == K_TRUE ? "\x20\x01" : "\x20\x00", 2);
    case K_INT: case K_FLOAT:
        d = ev->kind == K_FLOAT || ev->big ? ev->d : ev->neg ? -(double)ev->mag : (double)ev->mag;
        if (!isfinite(d)) return DECLINE; /* NaN too: the Python codec decides */
        memcpy(&bits, &d, 8);
        return buf_tag(b, 2, 1) == OK && buf_fixed(b, bits, 8) == OK ? OK : ERR;
    default: {
        uint32_t number = ev->kind == K_OBJECT ? 5 : 6;
        Table *sub = field_sub(t, number);
        if (depth + 1 > MAX_DEPTH || sub == NULL) return DECLINE;
        return p_sub(p, number, sub, ev, depth + 1);
    }
    }
}

/* cls.FromString(payload).SerializeToString(deterministic=True): the runtime orders map
 * entries otherwise than the core does, and the Python codec has it write the payload. */
static int repack(P *p, Table *inner, Py_ssize_t start) {
    State *st = p->ctx->st;
    Buf *b = p->b;
    if (inner->cls == NULL || inner->cls == Py_None) return DECLINE;
    PyObject *data = PyBytes_FromStringAndSize(b->data + start, b->len - start), *out = NULL;
    PyObject *message = data ? PyObject_CallMethodOneArg(inner->cls, st->s_fromstring, data) : NULL;
    Py_XDECREF(data);
    if (message == NULL) { /* e.g. required fields: the Python codec says what is wrong */
        if (data == NULL || PyErr_ExceptionMatches(PyExc_MemoryError)) return ERR;
        PyErr_Clear();
        return DECLINE;
    }
    PyObject *serialize = PyObject_GetAttr(message, st->s_serialize);
    PyObject *args = PyTuple_New(0), *kwargs = Py_BuildValue("{O:O}", st->s_deterministic, Py_True);
    if (serialize && args && kwargs) out = PyObject_Call(serialize, args, kwargs);
    Py_XDECREF(serialize);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_DECREF(message);
    if (out == NULL) return ERR;
    int rc = PyBytes_Check(out) ? OK : DECLINE;
    b->len = start;
    if (rc == OK) rc = buf_raw(b, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out));
    Py_DECREF(out);
    return rc;
}

/* The payload of an Any whose type has a JSON form of its own: its "value" member, beside
 * "@type" (unless read already) and nothing else. */
static int p_any_value(P *p, Table *inner, int depth, int type_seen) {
    int more, rc, value_seen = 0;
    Ev key, v;
    while ((rc = p->src->member(p->src, &key, &more)) == OK && more) {
        if (is(&key, "@type") && !type_seen) {
            type_seen = 1;
            rc = p->src->skip(p->src);
        } else if (is(&key, "value") && !value_seen && depth + 1 <= MAX_DEPTH) {
            value_seen = 1;
            rc = p->src->value(p->src, &v);
            if (rc == OK) rc = p_message(p, inner, &v, depth + 1, 0);
        } else {
            rc = DECLINE;
        }
        if (rc != OK) break;
    }
    return rc == OK && !value_seen ? DECLINE : rc;
}

static int p_any(P *p, const Ev *ev, int depth) {
    Ev url, key;
    int more, taken, rc = ev->kind == K_OBJECT ? p->src->find_type(p->src, &url, &taken) : DECLINE;
    if (rc != OK) return rc;
    if (url.kind == K_NULL) { /* {}: the empty Any */
        rc = p->src->member(p->src, &key, &more);
        return rc == OK && more ? DECLINE : rc;
    }
    PyObject *type_url = ev_str(&url);
    if (type_url == NULL) return ERR;
    Table *inner = resolve_type(p->ctx, type_url, &rc);
    Buf *b = p->b;
    if (rc == OK) {
        /* the URL first (it is what the source read last), then the payload */
        if (buf_tag(b, 1, 2) != OK || buf_varint(b, (uint64_t)url.n) != OK ||
            buf_raw(b, url.s, url.n) != OK)
            rc = ERR;
        Py_ssize_t mark = b->len;
        if (rc == OK && buf_tag(b, 2, 2) != OK) rc = ERR;
        Py_ssize_t start = buf_open(b);
        if (rc == OK)
            rc = inner->wkt == W_NONE ? p_message(p, inner, ev, depth + 1, taken ? 2 : 1)
                                      : p_any_value(p, inner, depth, taken);
        if (rc == OK && p->ctx->repack_maps && (inner->flags & TF_HAS_MAPS) && b->len > start)
            rc = repack(p, inner, start);
        if (rc == OK && b->len == start) b->len = mark; /* an empty payload is not written */
        else if (rc == OK) rc = buf_close(b, start);
    }
    Py_XDECREF(inner);
    Py_DECREF(type_url);
    return rc;
}

static int p_wkt(P *p, Table *t, const Ev *ev, int depth) {
    int string = ev->kind == K_STRING && ev->ascii;
    switch (t->wkt) {
    case W_TIMESTAMP: return string ? timestamp_from_text(p->b, ev->s, ev->n) : DECLINE;
    case W_DURATION: return string ? duration_from_text(p->b, ev->s, ev->n) : DECLINE;
    case W_FIELD_MASK: return string ? field_mask_from_text(p->b, ev->s, ev->n) : DECLINE;
    case W_STRUCT: return p_map(p, &t->fields[0], ev, depth);
    case W_LIST_VALUE: return p_repeated(p, &t->fields[0], ev, depth);
    case W_VALUE: return p_value(p, t, ev, depth);
    case W_WRAPPER: return p_scalar(p, &t->fields[0], ev, PLAIN);
    case W_ANY: return p_any(p, ev, depth);
    default: return DECLINE;
    }
}

/* in_any: an Any's payload, whose "@type" is to be passed over (1) or was read (2). */
static int p_message(P *p, Table *t, const Ev *ev, int depth, int in_any) {
    if (depth > MAX_DEPTH || (t->flags & TF_UNSUPPORTED) || !t->ready) return DECLINE;
    if (t->wkt != W_NONE && !in_any) return p_wkt(p, t, ev, depth);
    return ev->kind == K_OBJECT ? p_fields(p, t, depth, in_any) : DECLINE;
}

int parse(Ctx *ctx, Src *src, Buf *b, Table *t) {
    P p = {ctx, src, b, NULL, 0, 0, {0}};
    Ev ev;
    int rc = src->value(src, &ev);
    if (rc == OK) rc = p_message(&p, t, &ev, 1, 0);
    PyMem_Free(p.segs);
    buf_free(&p.skipped);
    return rc;
}
