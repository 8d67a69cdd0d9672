/* Reading JSON text token by token (see lex.h). Every check here is one that orjson and
 * json.loads both make, or a narrower one: what this reader takes, both read to the same
 * value; what it is unsure of, it declines.
 */
#include "lex.h"
#include <string.h>

/* Bytes that end the plain (ASCII, unescaped) run of a string: '"', '\\', control
 * characters and non-ASCII. A table, as this loop is most of the reading. */
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const uint8_t ENDS_PLAIN[256] = {
    R16(1), R16(1),
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
    R16(0), R16(0),
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
    R16(0), R16(0),
    R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1), R16(1),
};
#undef R16
static inline int ends_plain(uint8_t c) { return ENDS_PLAIN[c]; }

/* Past the plain bytes at p: eight at a time while a word has none of the ending bytes (the
 * bit tricks may see one where there is none, never miss one: the table then decides). */
static const uint8_t *skip_plain(const uint8_t *p, const uint8_t *end) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
        uint64_t found = ((quote - ones) & ~quote) | ((slash - ones) & ~slash) |
                         (w - ones * 0x20) | w;
        if (found & highs) break;
        p += 8;
    }
    while (p < end && !ends_plain(*p)) p++;
    return p;
}

static int hex4(const uint8_t *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        uint32_t d;
        if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
        else return DECLINE;
        v = v << 4 | d;
    }
    *out = v;
    return OK;
}

static int put_utf8(Buf *b, uint32_t c) {
    uint8_t o[4];
    Py_ssize_t n;
    if (c < 0x80) {
        o[0] = (uint8_t)c;
        n = 1;
    } else if (c < 0x800) {
        o[0] = (uint8_t)(0xC0 | c >> 6);
        o[1] = (uint8_t)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | c >> 12);
        o[1] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        o[0] = (uint8_t)(0xF0 | c >> 18);
        o[1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
        o[2] = (uint8_t)(0x80 | (c >> 6 & 0x3F));
        o[3] = (uint8_t)(0x80 | (c & 0x3F));
        n = 4;
    }
    return buf_raw(b, o, n);
}

/* Length of the well-formed UTF-8 sequence at p (as Python's strict decoder takes it: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static int utf8_length(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    int n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (end - p < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

/* The rest of a string whose plain start [start, x->p) is behind, decoded into x->str. */
static int string_slow(Lx *x, const uint8_t *start, Tok *tok) {
    Buf *b = &x->str;
    b->len = 0;
    int ascii = 1;
    if (buf_raw(b, start, x->p - start) != OK) return ERR;
    const uint8_t *p = x->p, *end = x->end;
    for (;;) {
        const uint8_t *run = p;
        p = skip_plain(p, end);
        if (buf_raw(b, run, p - run) != OK) return ERR;
        if (p >= end) return DECLINE;
        uint8_t c = *p;
        if (c == '"') {
            p++;
            break;
        }
        if (c < 0x20) return DECLINE; /* raw control characters are not JSON */
        if (c >= 0x80) {
            int n = utf8_length(p, end);
            if (n == 0) return DECLINE;
            if (buf_raw(b, p, n) != OK) return ERR;
            p += n;
            ascii = 0;
            continue;
        }
        /* an escape */
        if (end - p < 2) return DECLINE;
        uint8_t e = p[1];
        p += 2;
        char out;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            uint32_t u, low;
            if (end - p < 4 || hex4(p, &u) != OK) return DECLINE;
            p += 4;
            if (u >= 0xDC00 && u <= 0xDFFF) return DECLINE; /* a lone low surrogate */
            if (u >= 0xD800 && u <= 0xDBFF) {
                /* only a pair makes a character; a lone one json.loads keeps, orjson refuses */
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &low) != OK ||
                    low < 0xDC00 || low > 0xDFFF)
                    return DECLINE;
                p += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
            }
            if (u >= 0x80) ascii = 0;
            if (put_utf8(b, u) != OK) return ERR;
            continue;
        }
        default: return DECLINE;
        }
        if (buf_raw(b, &out, 1) != OK) return ERR;
    }
    x->p = p;
    tok->kind = K_STRING;
    tok->s = b->data ? b->data : "";
    tok->n = b->len;
    tok->ascii = ascii;
    return OK;
}

int lx_string(Lx *x, Tok *tok) {
    if (lx_peek(x) != '"') return DECLINE;
    const uint8_t *start = ++x->p, *end = x->end;
    const uint8_t *p = skip_plain(start, end);
    if (p < end && *p == '"') { /* the common case: the text's own bytes */
        tok->kind = K_STRING;
        tok->s = (const char *)start;
        tok->n = p - start;
        tok->ascii = 1;
        x->p = p + 1;
        return OK;
    }
    x->p = p;
    return string_slow(x, start, tok);
}

/* A run of digits (at least one). */
static int digit_run(Lx *x, Py_ssize_t *count) {
    const uint8_t *start = x->p;
    while (x->p < x->end && *x->p >= '0' && *x->p <= '9') x->p++;
    *count = x->p - start;
    return *count == 0 ? DECLINE : OK;
}

/* Integers of 19 digits and more are declined: orjson reads those beyond 64 bits as floats,
 * and jsontext then reads the text again with json.loads; stay clear of both. Fractions and
 * exponents of any length are taken: whichever of the two reads them, the double is the
 * correctly rounded one (as PyOS_string_to_double gives it; test_parse_text checks orjson). */
static int number(Lx *x, Tok *tok) {
    const uint8_t *start = x->p;
    int negative = 0;
    if (*x->p == '-') {
        negative = 1;
        x->p++;
    }
    if (x->p >= x->end) return DECLINE;
    Py_ssize_t n, more;
    const uint8_t *digits = x->p;
    if (digit_run(x, &n) != OK) return DECLINE;
    if (digits[0] == '0' && n > 1) return DECLINE; /* leading zeros are not JSON */
    int is_float = 0;
    if (x->p < x->end && *x->p == '.') {
        x->p++;
        if (digit_run(x, &more) != OK) return DECLINE;
        is_float = 1;
    }
    if (x->p < x->end && (*x->p == 'e' || *x->p == 'E')) {
        x->p++;
        if (x->p < x->end && (*x->p == '+' || *x->p == '-')) x->p++;
        if (digit_run(x, &more) != OK) return DECLINE;
        is_float = 1;
    }
    tok->s = (const char *)start;
    tok->n = (const char *)x->p - tok->s;
    if (is_float) {
        tok->kind = K_FLOAT;
        return OK;
    }
    if (n > 18) return DECLINE;
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) v = v * 10 + (digits[i] - '0');
    tok->kind = K_INT;
    tok->i = negative ? -v : v;
    return OK;
}

static int literal(Lx *x, const char *word, Py_ssize_t n, int kind, Tok *tok) {
    if (x->end - x->p < n || memcmp(x->p, word, (size_t)n) != 0) return DECLINE;
    x->p += n;
    tok->kind = kind;
    return OK;
}

int lx_token(Lx *x, Tok *tok) {
    switch (lx_peek(x)) {
    case '"': return lx_string(x, tok);
    case '{': tok->kind = K_OBJECT; return OK;
    case '[': tok->kind = K_ARRAY; return OK;
    case 't': return literal(x, "true", 4, K_TRUE, tok);
    case 'f': return literal(x, "false", 5, K_FALSE, tok);
    case 'n': return literal(x, "null", 4, K_NULL, tok);
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
    case '8': case '9':
        return number(x, tok);
    default: return DECLINE; /* NaN, Infinity, the end, anything else */
    }
}

int lx_member(Lx *x, int first, Tok *key, int *more) {
    int c = lx_peek(x);
    if (c == '}') {
        x->p++;
        *more = 0;
        return OK;
    }
    if (!first) {
        if (c != ',') return DECLINE;
        x->p++;
    }
    *more = 1;
    int rc = lx_string(x, key);
    if (rc != OK) return rc;
    return lx_expect(x, ':');
}

int lx_item(Lx *x, int first, int *more) {
    int c = lx_peek(x);
    if (c == ']') {
        x->p++;
        *more = 0;
        return OK;
    }
    if (!first) {
        if (c != ',') return DECLINE;
        x->p++;
    }
    *more = 1;
    return OK;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path: a mantissa below 2^53 and a power of ten up to 10^22 are both exact
 * doubles, so one IEEE multiplication or division rounds the quotient or product correctly
 * (SSE2 arithmetic, no extended precision): the value strtod gives. */
static int fast_double(const Tok *tok, double *out) {
    const char *p = tok->s, *end = tok->s + tok->n;
    int negative = *p == '-';
    p += negative;
    uint64_t m = 0;
    int digits = 0, scale = 0, fraction = 0;
    for (; p < end && ((*p >= '0' && *p <= '9') || *p == '.'); p++) {
        if (*p == '.') {
            fraction = 1;
            continue;
        }
        m = m * 10 + (uint64_t)(*p - '0');
        if (m != 0 && ++digits > 15) return 0; /* leading zeros do not count */
        scale -= fraction;
        if (scale < -40) return 0;
    }
    if (p < end) { /* the exponent */
        p++;
        int eneg = 0, e = 0;
        if (*p == '+' || *p == '-') eneg = *p++ == '-';
        for (; p < end; p++) {
            e = e * 10 + (*p - '0');
            if (e > 1000) return 0;
        }
        scale += eneg ? -e : e;
    }
    if (scale < -22 || scale > 22) return 0;
    double d = (double)m; /* below 10^15 < 2^53: exact */
    d = scale < 0 ? d / POW10[-scale] : d * POW10[scale];
    *out = negative ? -d : d;
    return 1;
}

int lx_double(const Tok *tok, double *out) {
    if (fast_double(tok, out)) return OK;
    /* The token is followed by a byte that cannot continue a number (or by the text's NUL
     * terminator: bytes and str UTF-8 both have one), so the conversion stops at its end. */
    char *stop = NULL;
    double d = PyOS_string_to_double(tok->s, &stop, NULL);
    if (d == -1.0 && PyErr_Occurred()) return ERR;
    if (stop != tok->s + tok->n) return DECLINE;
    *out = d;
    return OK;
}
