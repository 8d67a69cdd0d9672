/* The text sink of emit.c: compact JSON text, byte for byte what orjson.dumps writes for the
 * value sink_value.c builds from the same calls (encode_text's contract): its float
 * spelling, its escapes, non-ASCII written raw. tests/codec/test_encode_text.py checks each
 * piece against orjson.
 */
#include "native.h"
#include <float.h>
#include <math.h>

static inline int put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n + 1) != OK) return ERR;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return OK;
}

/* The ',' before a value or key, unless it opens its container or follows its key. */
static inline int sep(Buf *b) {
    if (buf_reserve(b, 1) != OK) return ERR;
    char last = b->len ? b->data[b->len - 1] : '[';
    if (last != '[' && last != '{' && last != ':') b->data[b->len++] = ',';
    return OK;
}

static const char HEX[] = "0123456789abcdef";

/* Bytes orjson writes escaped: the control characters, '"' and '\\'. */
static const uint8_t ESCAPED[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether a word may hold a byte to escape ('"', '\\', control characters) or non-ASCII:
 * never a miss; a false alarm only sends the word the slow way. */
static inline int special(uint64_t w) {
    uint64_t quote = w ^ (ONES * '"'), slash = w ^ (ONES * '\\');
    return ((((quote - ONES) & ~quote) | ((slash - ONES) & ~slash) | (w - ONES * 0x20) | w) & HIGHS) != 0;
}

/* A string from UTF-8, checked (DECLINE when it is not UTF-8, as the value sink's decoding
 * refuses it) and escaped as orjson escapes. */
static int json_string(Buf *b, const char *s, Py_ssize_t n) {
    if (n > (PY_SSIZE_T_MAX - 3) / 6) { /* at most 6 bytes per byte (\u00XX), the quotes */
        PyErr_NoMemory();
        return ERR;
    }
    if (buf_reserve(b, n * 6 + 3) != OK) return ERR;
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    char *o = b->data + b->len;
    *o++ = '"';
    while (p < end) {
        uint64_t w;
        while (end - p >= 8 && (memcpy(&w, p, 8), !special(w))) {
            memcpy(o, p, 8);
            o += 8;
            p += 8;
        }
        if (p == end) break;
        uint8_t c = *p;
        if (c >= 0x80) {
            int len = utf8_char(p, end);
            if (len == 0) return DECLINE;
            memcpy(o, p, (size_t)len);
            o += len;
            p += len;
            continue;
        }
        p++;
        if (!ESCAPED[c]) {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        const char *short_form = strchr("\"\"\\\\\bb\tt\nn\ff\rr", c);
        if (c && short_form) {
            *o++ = short_form[1];
        } else {
            memcpy(o, "u00", 3);
            o[3] = HEX[c >> 4];
            o[4] = HEX[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    b->len = o - b->data;
    return OK;
}

/* Shortest digits without dtoa for the common doubles with a few decimals (0.87, 12.5):
 * the smallest k for which an integer m reads back as d = m / 10^k. With m below 2^50 the
 * doubles near d are less than 1/4 apart in units of 10^-k, so m is the only candidate at
 * that k and d * 10^k rounds to it; m / 10^k, both exact, divides correctly rounded, which
 * is how the text m e-k reads. No fewer digits can read back as d (a smaller k would have),
 * and no other string of as many digits does: these are repr's digits. */
static int few_decimals(double a, char *digits, int *nd, int *point) {
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
    /* The argument needs each operation rounded to double; with wider intermediates (x87)
     * it does not hold, so such a build always asks dtoa. */
    return 0;
#else
    static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    if (!(a >= 1e-4 && a < 1e9)) return 0;
    for (int k = 0; k <= 8; k++) {
        double scaled = a * POW10[k], m = nearbyint(scaled);
        if (scaled >= 1125899906842624.0) return 0; /* 2^50 */
        if (m / POW10[k] != a) continue;
        *nd = fmt_digits(digits, (uint64_t)m, 0);
        *point = *nd - k; /* may be <= 0: leading zeros follow the point */
        return 1;
    }
    return 0;
#endif
}

/* A finite double as orjson writes it: the shortest round-trip digits (repr's), laid out as
 * 1234.5, 0.00012345 (down to 10^-5), or 1.2345e+16 / 1e-7 from 10^16 up and below 10^-5;
 * integral values keep ".0". */
static int json_finite(Buf *b, double d) {
    if (buf_reserve(b, 32) != OK) return ERR;
    char *o = b->data + b->len, digits[32];
    int len = 0, nd = 0, point = -1;
    if (d == 0.0 || (d == floor(d) && fabs(d) < 9007199254740992.0)) { /* integers below 2^53 */
        if (signbit(d)) o[len++] = '-';
        len += fmt_digits(o + len, (uint64_t)fabs(d), 0);
        memcpy(o + len, ".0", 2);
        b->len += len + 2;
        return OK;
    }
    if (d < 0) o[len++] = '-';
    if (!few_decimals(fabs(d), digits, &nd, &point)) {
        char *repr = PyOS_double_to_string(fabs(d), 'r', 0, 0, NULL), *s;
        if (repr == NULL) return ERR;
        /* repr's digits and where the point falls in them (the value is 0.D x 10^point) */
        for (s = repr; *s && *s != 'e'; s++) {
            if (*s == '.') point = nd;
            else if (nd < 30) digits[nd++] = *s;
        }
        point = (point < 0 ? nd : point) + (*s == 'e' ? (int)strtol(s + 1, NULL, 10) : 0);
        PyMem_Free(repr);
    }
    int lead = 0;
    while (lead < nd && digits[lead] == '0') lead++;
    while (nd > lead && digits[nd - 1] == '0') nd--;
    const char *D = digits + lead;
    int n = nd - lead, kk = point - lead;
    if (kk > 0 && kk <= 16) {
        int whole = n < kk ? n : kk;
        memcpy(o + len, D, (size_t)whole);
        len += whole;
        for (int k = n; k < kk; k++) o[len++] = '0';
        o[len++] = '.';
        if (n <= kk) o[len++] = '0';
        else memcpy(o + len, D + kk, (size_t)(n - kk)), len += n - kk;
    } else if (kk <= 0 && kk > -5) {
        memcpy(o + len, "0.0000", (size_t)(2 - kk));
        len += 2 - kk;
        memcpy(o + len, D, (size_t)n);
        len += n;
    } else {
        o[len++] = D[0];
        if (n > 1) {
            o[len++] = '.';
            memcpy(o + len, D + 1, (size_t)(n - 1));
            len += n - 1;
        }
        o[len++] = 'e';
        o[len++] = kk - 1 < 0 ? '-' : '+';
        len += fmt_digits(o + len, (uint64_t)(kk - 1 < 0 ? 1 - kk : kk - 1), 0);
    }
    b->len += len;
    return OK;
}

/* A JSON value the table holds (what emit_unpopulated writes, an enum's name): null, a
 * bool, a str, an int, a float, [] or {}. */
static int json_pyvalue(Buf *b, PyObject *v) {
    char text[24];
    int overflow;
    Py_ssize_t n;
    if (sep(b) != OK) return ERR;
    if (v == Py_None || v == Py_True || v == Py_False)
        return put(b, v == Py_None ? "null" : v == Py_True ? "true" : "false", v == Py_False ? 5 : 4);
    if (PyUnicode_CheckExact(v)) {
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s != NULL) return json_string(b, s, n);
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
        PyErr_Clear();
        return DECLINE; /* a lone surrogate: orjson refuses it */
    }
    if (PyLong_CheckExact(v)) {
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred()) return ERR;
        return overflow ? DECLINE : put(b, text, fmt_signed(text, x));
    }
    if (PyFloat_CheckExact(v)) /* orjson writes null for what is not finite */
        return isfinite(PyFloat_AS_DOUBLE(v)) ? json_finite(b, PyFloat_AS_DOUBLE(v)) : DECLINE;
    if (PyList_CheckExact(v) && PyList_GET_SIZE(v) == 0) return put(b, "[]", 2);
    if (PyDict_CheckExact(v) && PyDict_GET_SIZE(v) == 0) return put(b, "{}", 2);
    return DECLINE;
}

static int text_open(Sink *s, int bracket) {
    Buf *b = &((TextSink *)s)->b;
    char c = (char)bracket;
    return sep(b) == OK ? put(b, &c, 1) : ERR;
}

static int text_close(Sink *s, int bracket) {
    char c = (char)bracket;
    return put(&((TextSink *)s)->b, &c, 1);
}

int json_key_text(Buf *b, const char *key, Py_ssize_t n) {
    int rc = json_string(b, key, n);
    return rc == OK ? put(b, ":", 1) : rc;
}

static int text_field_key(Sink *s, const Field *f) {
    Buf *b = &((TextSink *)s)->b;
    return sep(b) == OK ? put(b, f->key_json, f->key_json_n) : ERR;
}

static int text_key(Sink *s, PyObject *obj, const char *key, Py_ssize_t n) {
    Buf *b = &((TextSink *)s)->b;
    return sep(b) == OK ? json_key_text(b, key, n) : ERR;
}

static int text_str(Sink *s, const char *p, Py_ssize_t n, int ascii) {
    Buf *b = &((TextSink *)s)->b;
    if (sep(b) != OK) return ERR;
    if (!ascii) return json_string(b, p, n);
    if (buf_reserve(b, n + 2) != OK) return ERR;
    b->data[b->len] = '"';
    memcpy(b->data + b->len + 1, p, (size_t)n);
    b->data[b->len + n + 1] = '"';
    b->len += n + 2;
    return OK;
}

static int text_b64(Sink *s, const uint8_t *p, Py_ssize_t n) {
    Buf *b = &((TextSink *)s)->b;
    if (sep(b) != OK || buf_reserve(b, base64_size(n) + 2) != OK) return ERR;
    b->data[b->len++] = '"';
    base64_write(b->data + b->len, p, n);
    b->len += base64_size(n);
    b->data[b->len++] = '"';
    return OK;
}

static int text_integer(Sink *s, int64_t v) {
    Buf *b = &((TextSink *)s)->b;
    char text[24];
    return sep(b) == OK ? put(b, text, fmt_signed(text, v)) : ERR;
}

static int text_number(Sink *s, double d) {
    Buf *b = &((TextSink *)s)->b;
    if (sep(b) != OK) return ERR;
    if (isnan(d)) return put(b, "\"NaN\"", 5);
    if (isinf(d)) return d > 0 ? put(b, "\"Infinity\"", 10) : put(b, "\"-Infinity\"", 11);
    return json_finite(b, d);
}

static int text_literal(Sink *s, int kind) {
    Buf *b = &((TextSink *)s)->b;
    if (sep(b) != OK) return ERR;
    return kind == K_NULL ? put(b, "null", 4) : kind == K_TRUE ? put(b, "true", 4) : put(b, "false", 5);
}

static int text_object(Sink *s, PyObject *v) { return json_pyvalue(&((TextSink *)s)->b, v); }

void text_sink_init(TextSink *s) {
    *s = (TextSink){{text_open, text_close, text_field_key, text_key, text_str, text_b64, text_integer,
                     text_number, text_literal, text_object},
                    {0}};
}
