/* The text source of parse.c: strict RFC 8259 JSON, read token by token straight from UTF-8
 * text. Every check here is one that orjson and json.loads both make, or a narrower one:
 * what this reader takes, both read to the same value (the value jsontext.loads gives);
 * what it is unsure of (lone surrogates, integers beyond 64 bits, NaN), it declines.
 */
#include "native.h"

static inline int peek(Lex *x) {
    for (; x->p < x->end && *x->p <= ' '; x->p++) /* (whitespace is below '!') */
        if (*x->p != ' ' && *x->p != '\n' && *x->p != '\r' && *x->p != '\t') break;
    return x->p < x->end ? *x->p : -1;
}

static inline int expect(Lex *x, int c) {
    if (peek(x) != c) return DECLINE;
    x->p++;
    return OK;
}

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
    while (p < end && !ENDS_PLAIN[*p]) p++;
    return p;
}

static int hex4(const uint8_t *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        if (c >= '0' && c <= '9') v = v << 4 | (uint32_t)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') v = v << 4 | (uint32_t)((c | 0x20) - 'a' + 10);
        else return DECLINE;
    }
    *out = v;
    return OK;
}

static int put_utf8(Buf *b, uint32_t c) {
    uint8_t o[4];
    int n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    static const uint8_t lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (int i = n - 1; i > 0; i--, c >>= 6) o[i] = (uint8_t)(0x80 | (c & 0x3F));
    o[0] = (uint8_t)(lead[n] | c);
    return buf_raw(b, o, n);
}

static inline void set_string(Ev *ev, const char *s, Py_ssize_t n, int ascii) {
    ev->kind = K_STRING;
    ev->s = s;
    ev->n = n;
    ev->ascii = ascii;
    ev->obj = NULL;
}

/* The rest of a string whose plain start [start, x->p) is behind, decoded into x->str. */
static int string_slow(Lex *x, const uint8_t *start, Ev *ev) {
    Buf *b = &x->str;
    b->len = 0;
    int ascii = 1;
    if (buf_raw(b, start, x->p - start) != OK) return ERR;
    const uint8_t *p = x->p, *end = x->end;
    for (;;) {
        const uint8_t *run = p;
        p = skip_plain(p, end);
        if (buf_raw(b, run, p - run) != OK) return ERR;
        if (p >= end || *p < 0x20) return DECLINE; /* unterminated; raw control characters */
        if (*p == '"') break;
        if (*p >= 0x80) {
            int n = utf8_char(p, end);
            if (n == 0 || buf_raw(b, p, n) != OK) return n == 0 ? DECLINE : ERR;
            p += n;
            ascii = 0;
            continue;
        }
        if (end - p < 2) return DECLINE; /* an escape */
        static const char ESCAPED[] = "\"\\/bfnrt", MEANS[] = "\"\\/\b\f\n\r\t";
        const char *plain = p[1] ? strchr(ESCAPED, p[1]) : NULL;
        p += 2;
        if (plain != NULL) {
            char out = MEANS[plain - ESCAPED];
            if (buf_raw(b, &out, 1) != OK) return ERR;
            continue;
        }
        uint32_t u, low;
        if (p[-1] != 'u' || end - p < 4 || hex4(p, &u) != OK) return DECLINE;
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
    }
    /* NUL-terminated, as the text is: strtod may read number text from it */
    if (buf_reserve(b, 1) != OK) return ERR;
    b->data[b->len] = 0;
    x->p = p + 1;
    set_string(ev, b->data, b->len, ascii);
    return OK;
}

static int string(Lex *x, Ev *ev) {
    if (peek(x) != '"') return DECLINE;
    const uint8_t *start = ++x->p, *p = skip_plain(start, x->end);
    if (p < x->end && *p == '"') { /* the common case: the text's own bytes */
        set_string(ev, (const char *)start, p - start, 1);
        x->p = p + 1;
        return OK;
    }
    x->p = p;
    return string_slow(x, start, ev);
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The double of number text (grammar checked), correctly rounded, as orjson and
 * json.loads read it. Clinger's fast path first: a mantissa below 2^53 and a power of ten
 * up to 10^22 are both exact doubles, so one IEEE multiplication or division rounds
 * correctly (no extended precision: see the FLT_EVAL_METHOD check in sink_text.c). */
static int to_double(const char *s, Py_ssize_t n, double *out) {
    const char *p = s, *end = s + n;
    int negative = *p == '-', digits = 0, scale = 0, fraction = 0, slow = 0;
    uint64_t m = 0;
    for (p += negative; p < end && ((*p >= '0' && *p <= '9') || *p == '.'); p++) {
        if (*p == '.') {
            fraction = 1;
            continue;
        }
        m = m * 10 + (uint64_t)(*p - '0');
        if (m != 0 && ++digits > 15) slow = 1; /* leading zeros do not count */
        scale -= fraction;
        if (scale < -40) slow = 1;
        if (slow) break;
    }
    if (!slow && p < end) { /* the exponent */
        int eneg = 0, e = 0;
        if (*++p == '+' || *p == '-') eneg = *p++ == '-';
        for (; p < end && e <= 1000; p++) e = e * 10 + (*p - '0');
        scale += eneg ? -e : e;
    }
    if (!slow && scale >= -22 && scale <= 22) {
        double d = (double)m; /* below 10^15 < 2^53: exact */
        d = scale < 0 ? d / POW10[-scale] : d * POW10[scale];
        *out = negative ? -d : d;
        return OK;
    }
    /* The token is followed by a byte that cannot continue a number (or by a NUL: the text,
     * and the decoded string buffer, have one), so the conversion stops at its end. */
    char *stop = NULL;
    double d = PyOS_string_to_double(s, &stop, NULL);
    if (d == -1.0 && PyErr_Occurred()) return ERR;
    if (stop != end) return DECLINE;
    *out = d;
    return OK;
}

static int digit_run(Lex *x) {
    const uint8_t *start = x->p;
    while (x->p < x->end && *x->p >= '0' && *x->p <= '9') x->p++;
    return (int)(x->p - start);
}

/* Integers are read exactly up to 2^64 - 1 (json.loads reads them exactly; jsontext turns
 * to it for runs of 19 digits, which orjson may read otherwise); beyond, this declines. */
static int number(Lex *x, Ev *ev) {
    const uint8_t *start = x->p;
    ev->kind = K_INT;
    ev->neg = *x->p == '-';
    ev->big = 0;
    ev->mag = 0;
    x->p += ev->neg;
    const uint8_t *digits = x->p;
    int n = digit_run(x);
    if (n == 0 || (digits[0] == '0' && n > 1)) return DECLINE; /* leading zeros: not JSON */
    if (x->p < x->end && *x->p == '.') {
        x->p++;
        if (digit_run(x) == 0) return DECLINE;
        ev->kind = K_FLOAT;
    }
    if (x->p < x->end && (*x->p | 0x20) == 'e') {
        x->p++;
        if (x->p < x->end && (*x->p == '+' || *x->p == '-')) x->p++;
        if (digit_run(x) == 0) return DECLINE;
        ev->kind = K_FLOAT;
    }
    if (ev->kind == K_FLOAT) return to_double((const char *)start, x->p - start, &ev->d);
    for (int i = 0; i < n; i++) {
        uint64_t d = (uint64_t)(digits[i] - '0');
        if (ev->mag > (UINT64_MAX - d) / 10) return DECLINE;
        ev->mag = ev->mag * 10 + d;
    }
    ev->neg &= ev->mag != 0; /* -0 reads as the integer 0 */
    return OK;
}

static int literal(Lex *x, const char *word, int kind, Ev *ev) {
    Py_ssize_t n = (Py_ssize_t)strlen(word);
    if (x->end - x->p < n || memcmp(x->p, word, (size_t)n) != 0) return DECLINE;
    x->p += n;
    ev->kind = kind;
    return OK;
}

static int lex_value(Src *src, Ev *ev) {
    Lex *x = (Lex *)src;
    int c = peek(x);
    switch (c) {
    case '"': return string(x, ev);
    case '{': case '[':
        x->p++;
        x->first = 1;
        ev->kind = c == '{' ? K_OBJECT : K_ARRAY;
        return OK;
    case 't': return literal(x, "true", K_TRUE, ev);
    case 'f': return literal(x, "false", K_FALSE, ev);
    case 'n': return literal(x, "null", K_NULL, ev);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(x, ev);
        return DECLINE; /* NaN, Infinity, the end, anything else */
    }
}

/* A member or item follows (OK, *more = 1, the ',' before it consumed), or the container
 * ends at close (*more = 0). */
static inline int next(Lex *x, int close, int *more) {
    int c = peek(x);
    *more = c != close;
    if (!*more) {
        x->p++;
        x->first = 0;
        return OK;
    }
    if (!x->first && expect(x, ',') != OK) return DECLINE;
    x->first = 0;
    return OK;
}

static int lex_member(Src *src, Ev *key, int *more) {
    Lex *x = (Lex *)src;
    int rc = next(x, '}', more);
    if (rc != OK || !*more) return rc;
    rc = string(x, key);
    return rc == OK ? expect(x, ':') : rc;
}

static int lex_item(Src *src, int *more) { return next((Lex *)src, ']', more); }

/* A value read and dropped (still checked: jsontext.loads must read the text); nesting past
 * MAX_DEPTH is declined, as the Python reader may refuse it. */
static int skip_at(Lex *x, int depth) {
    Ev ev, key;
    int rc = lex_value(&x->src, &ev), more = 1;
    if (rc != OK || (ev.kind != K_OBJECT && ev.kind != K_ARRAY)) return rc;
    if (depth > MAX_DEPTH) return DECLINE;
    /* The key goes apart from ev: ev's kind says, to the end, which container this is. */
    while (rc == OK) {
        rc = ev.kind == K_OBJECT ? lex_member(&x->src, &key, &more) : lex_item(&x->src, &more);
        if (rc != OK || !more) return rc;
        rc = skip_at(x, depth + 1);
    }
    return rc;
}

static int lex_skip(Src *src) { return skip_at((Lex *)src, 0); }

static int lex_find_type(Src *src, Ev *url, int *taken) {
    Lex *x = (Lex *)src;
    const uint8_t *at = x->p;
    int more, rc;
    Ev key;
    for (*taken = 1; (rc = lex_member(src, &key, &more)) == OK; *taken = 0) {
        if (!more) {
            url->kind = K_NULL;
            break;
        }
        if (key.n == 5 && memcmp(key.s, "@type", 5) == 0) {
            rc = lex_value(src, url);
            if (rc == OK && url->kind != K_STRING) rc = DECLINE;
            if (*taken) return rc; /* first, as writers put it: read once */
            break;
        }
        rc = lex_skip(src);
        if (rc != OK) break;
    }
    x->p = at;
    x->first = 1;
    *taken = 0;
    return rc;
}

void lex_init(Lex *x, const char *s, Py_ssize_t n) {
    *x = (Lex){{lex_value, lex_member, lex_item, lex_skip, lex_find_type},
               (const uint8_t *)s, (const uint8_t *)s + n, 0, {0}};
}

int lex_done(Lex *x) { return peek(x) == -1; }
