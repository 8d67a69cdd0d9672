/* The well-known types' own JSON forms, from text: wkt.c's parse side (parse_wkt and what
 * it calls), step for step, with the same depth arithmetic. Part of the text path of decode
 * (see parse_text.c).
 */
#include "parse_text.h"
#include <math.h>
#include <string.h>

static int tx_value(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth);

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

/* parse_wkt, from text. */
int tx_wkt(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth) {
    switch (t->wkt) {
    case W_TIMESTAMP: case W_DURATION: case W_FIELD_MASK: return tx_string_wkt(x, b, t->wkt);
    case W_STRUCT: return tx_struct(ctx, x, b, t, depth);
    case W_LIST_VALUE: return tx_list(ctx, x, b, t, depth);
    case W_VALUE: return tx_value(ctx, x, b, t, depth);
    case W_WRAPPER: return tx_scalar(ctx, x, b, &t->fields[0], 0, 0);
    case W_ANY: return tx_any(ctx, x, b, depth);
    default: return DECLINE;
    }
}
