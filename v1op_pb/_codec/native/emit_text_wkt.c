/* The well-known types as JSON text (encode_text), mirroring emit_wkt in wkt.c: the same
 * checks and depth counting, text where wkt.c builds values. Timestamp, Duration and
 * FieldMask text comes from wkt_time.c's formatters.
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

static int text_value(Buf *b, const uint8_t *p, Py_ssize_t n, int depth);

/* Struct: its entries sorted by key (maps.c), each Value at depth + 2. */
static int text_struct(Buf *b, const uint8_t *p, Py_ssize_t n, int depth) {
    if (depth > MAX_DEPTH) return DECLINE;
    MapList m = {0};
    int rc = struct_entries(p, n, &m);
    if (rc == OK) rc = put(b, "{", 1);
    for (Py_ssize_t i = 0; i < m.n && rc == OK; i++) {
        const MapEntry *e = &m.items[i];
        if (i && put(b, ",", 1) != OK) {
            rc = ERR;
            break;
        }
        rc = json_string(b, e->key, e->key_n);
        if (rc == OK) rc = put(b, ":", 1);
        if (rc == OK)
            rc = e->has_value ? text_value(b, e->value, e->value_end - e->value, depth + 2)
                              : text_value(b, p, 0, depth + 2);
    }
    map_list_free(&m);
    return rc == OK ? put(b, "}", 1) : rc;
}

static int text_list_value(Buf *b, const uint8_t *p, Py_ssize_t n, int depth) {
    if (depth > MAX_DEPTH) return DECLINE;
    Rd r = {p, p + n};
    int rc = put(b, "[", 1);
    for (int count = 0; r.p < r.end && rc == OK; count++) {
        uint64_t tag, len;
        if (rd_varint1(&r, &tag) != OK || tag != ((1 << 3) | 2) || rd_varint1(&r, &len) != OK ||
            len > (uint64_t)(r.end - r.p))
            return DECLINE;
        if (count && put(b, ",", 1) != OK) return ERR;
        rc = text_value(b, r.p, (Py_ssize_t)len, depth + 1);
        r.p += len;
    }
    return rc == OK ? put(b, "]", 1) : rc;
}

/* A Value holding one kind (1 null, 2 number, 3 string, 4 bool, 5 struct, 6 list); two
 * kinds on the wire (a serializer writes one) are left to the value path. */
static int text_value(Buf *b, const uint8_t *p, Py_ssize_t n, int depth) {
    if (depth > MAX_DEPTH) return DECLINE;
    Rd r = {p, p + n};
    if (r.p == r.end) return put(b, "null", 4); /* no kind: null, as json_format writes it */
    uint64_t tag, v;
    if (rd_varint1(&r, &tag) != OK) return DECLINE;
    uint64_t number = tag >> 3;
    int wt = (int)(tag & 7);
    const uint8_t *q = NULL;
    double d = 0;
    if ((number == 1 || number == 4) && wt == 0) {
        if (rd_varint1(&r, &v) != OK) return DECLINE;
        if (number == 1 && (uint32_t)v != 0) return DECLINE; /* null_value other than 0 */
    } else if (number == 2 && wt == 1) {
        if (r.end - r.p < 8) return DECLINE;
        uint64_t bits = 0;
        for (int i = 7; i >= 0; i--) bits = (bits << 8) | r.p[i];
        r.p += 8;
        memcpy(&d, &bits, 8);
        if (!isfinite(d)) return DECLINE;
    } else if (number >= 3 && number <= 6 && number != 4 && wt == 2) {
        if (rd_varint1(&r, &v) != OK || v > (uint64_t)(r.end - r.p)) return DECLINE;
        q = r.p;
        r.p += v;
    } else {
        return DECLINE;
    }
    if (r.p != r.end) return DECLINE;
    switch (number) {
    case 1: return put(b, "null", 4);
    case 2: return json_double(b, d);
    case 3: return json_string(b, q, (Py_ssize_t)v);
    case 4: return v ? put(b, "true", 4) : put(b, "false", 5);
    case 5: return text_struct(b, q, (Py_ssize_t)v, depth + 1);
    default: return text_list_value(b, q, (Py_ssize_t)v, depth + 1);
    }
}

/* {"value": v} read as a regular message with emit_unpopulated (as emit_plain does), and
 * only v written. */
static int text_wrapper(Buf *b, Table *t, const uint8_t *p, Py_ssize_t n) {
    if ((t->flags & TF_UNSUPPORTED) || !t->ready || t->nfields != 1) return DECLINE;
    const Field *f = &t->fields[0];
    Rd r = {p, p + n}, value = {NULL, NULL};
    int wt = 0;
    while (r.p < r.end) {
        uint64_t tag;
        if (rd_varint1(&r, &tag) != OK || (tag >> 3) != f->number || value.p != NULL)
            return DECLINE;
        wt = (int)(tag & 7);
        value.p = r.p;
        if (wire_skip(&r, wt) != OK) return DECLINE;
        value.end = r.p;
    }
    if (value.p == NULL) return f->unpopulated ? json_pyvalue(b, f->unpopulated, 0) : DECLINE;
    int is_default;
    return text_scalar(b, f, wt, &value, &is_default);
}

static int text_any(Ctx *ctx, Buf *b, const uint8_t *p, Py_ssize_t n, int depth) {
    Span url_span, value_span;
    if (any_parts(p, n, &url_span, &value_span) != OK) return DECLINE;
    const uint8_t *url = url_span.p, *value = value_span.p;
    Py_ssize_t url_n = url_span.n, value_n = value_span.n;
    if (url_n == 0) return value_n ? DECLINE : put(b, "{}", 2);
    int url_rc;
    PyObject *type_url = any_url(url_span, &url_rc);
    if (type_url == NULL) return url_rc;
    int rc;
    Table *inner = resolve_type(ctx, type_url, &rc);
    Py_DECREF(type_url);
    if (rc != OK) return rc;
    const uint8_t *payload = value ? value : (const uint8_t *)"";
    rc = put(b, "{\"@type\":", 9);
    if (rc == OK) rc = json_string(b, url, url_n);
    if (rc == OK) {
        if (inner->wkt != W_NONE) {
            rc = put(b, ",\"value\":", 9);
            if (rc == OK) rc = text_message(ctx, b, inner, payload, value_n, depth + 1, NULL);
        } else {
            int first = 0;
            rc = text_message(ctx, b, inner, payload, value_n, depth + 1, &first);
        }
    }
    Py_DECREF(inner);
    return rc == OK ? put(b, "}", 1) : rc;
}

int text_wkt(Ctx *ctx, Buf *b, Table *t, const uint8_t *p, Py_ssize_t n, int depth) {
    if (depth > MAX_DEPTH) return DECLINE;
    char text[WKT_TEXT_MAX + 2];
    int len;
    switch (t->wkt) {
    case W_TIMESTAMP: case W_DURATION:
        len = t->wkt == W_TIMESTAMP ? timestamp_text(p, n, text + 1)
                                    : duration_text(p, n, text + 1);
        if (len < 0) return DECLINE;
        text[0] = text[len + 1] = '"';
        return put(b, text, len + 2);
    case W_FIELD_MASK: {
        Buf mask = {0};
        int rc = field_mask_text(p, n, &mask);
        if (rc == OK) rc = json_string(b, (const uint8_t *)(mask.data ? mask.data : ""), mask.len);
        buf_free(&mask);
        return rc;
    }
    case W_ANY: return text_any(ctx, b, p, n, depth);
    case W_STRUCT: return text_struct(b, p, n, depth);
    case W_LIST_VALUE: return text_list_value(b, p, n, depth);
    case W_VALUE: return text_value(b, p, n, depth);
    case W_WRAPPER: return text_wrapper(b, t, p, n);
    default: return DECLINE;
    }
}
