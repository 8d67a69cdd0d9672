/* JSON text pieces written exactly as orjson.dumps writes them, for encode_text: its
 * contract is byte equality with orjson.dumps(encode(...)), so each piece here follows
 * orjson's spelling, not the JSON grammar's freedom (tests/codec/test_encode_text.py checks
 * every one against orjson).
 */
#include "native.h"
#include <float.h>
#include <math.h>
#include <string.h>

int fmt_digits(char *out, uint64_t x, int negative) {
    char digits[24];
    int n = 0, len = 0;
    if (negative) out[len++] = '-';
    do {
        digits[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    while (n) out[len++] = digits[--n];
    return len;
}

int fmt_signed(char *out, int64_t v) {
    return v < 0 ? fmt_digits(out, (uint64_t)0 - (uint64_t)v, 1) : fmt_digits(out, (uint64_t)v, 0);
}

/* The length of the UTF-8 sequence at p (n bytes left, p[0] >= 0x80) as Python's strict
 * decoder takes it (no surrogates, no overlong forms, nothing past U+10FFFF), or 0: text it
 * would refuse is left to the Python codec. */
static int utf8_sequence(const uint8_t *p, Py_ssize_t n) {
    uint8_t c = p[0], lo = 0x80, hi = 0xBF;
    int more;
    if (c >= 0xC2 && c <= 0xDF) more = 1;
    else if (c == 0xE0) more = 2, lo = 0xA0;
    else if (c == 0xED) more = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) more = 2;
    else if (c == 0xF0) more = 3, lo = 0x90;
    else if (c == 0xF4) more = 3, hi = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3) more = 3;
    else return 0;
    if (n <= more || p[1] < lo || p[1] > hi) return 0;
    for (int k = 2; k <= more; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return more + 1;
}

static const char HEX[] = "0123456789abcdef";

/* Bytes orjson writes escaped: the control characters, '"' and '\\'. */
static const uint8_t ESCAPED[128] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};

int json_string(Buf *b, const uint8_t *p, Py_ssize_t n) {
    /* at most 6 bytes per input byte (\u00XX), and the quotes */
    if (n > (PY_SSIZE_T_MAX - 2) / 6) {
        PyErr_NoMemory();
        return ERR;
    }
    if (buf_reserve(b, n * 6 + 2) != OK) return ERR;
    char *o = b->data + b->len;
    *o++ = '"';
    Py_ssize_t i = 0;
    while (i < n) {
        while (i < n && p[i] < 0x80 && !ESCAPED[p[i]]) *o++ = (char)p[i++];
        if (i == n) break;
        uint8_t c = p[i];
        if (c >= 0x80) { /* non-ASCII is written raw, once it is known to be UTF-8 */
            int len = utf8_sequence(p + i, n - i);
            if (len == 0) return DECLINE;
            memcpy(o, p + i, (size_t)len);
            o += len;
            i += len;
            continue;
        }
        i++;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
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

int json_str_object(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
        PyErr_Clear();
        return DECLINE; /* a lone surrogate: orjson refuses it */
    }
    return json_string(b, (const uint8_t *)u, n);
}

/* The shortest of 6 to 9 significant digits that reads back as the same 32-bit float, as
 * scalars._encode_float finds it: the double that the JSON value holds. */
int float_shortest(float f, double *out) {
    double value = (double)f;
    for (int precision = 6; precision < 10; precision++) {
        char *text = PyOS_double_to_string(value, 'g', precision, 0, NULL);
        if (text == NULL) return ERR;
        double rounded = PyOS_string_to_double(text, NULL, NULL);
        PyMem_Free(text);
        if (rounded == -1.0 && PyErr_Occurred()) return ERR;
        if ((double)(float)rounded == value) {
            *out = rounded;
            return OK;
        }
    }
    *out = value;
    return OK;
}

/* Shortest digits without dtoa for the common doubles with a few decimals (0.87, 12.5):
 * the smallest k for which an integer m reads back as d = m / 10^k. With m below 2^50 the
 * doubles near d are less than 1/4 apart in units of 10^-k, so m is the only candidate at
 * that k and d * 10^k rounds to it; m / 10^k, both exact, divides correctly rounded, which
 * is how the text m e-k reads. No fewer digits can read back as d (a smaller k would have),
 * and no other string of as many digits does: these are repr's digits. */
static int few_decimals(double d, char *digits, int *nd, int *point) {
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
    /* The argument needs each operation rounded to double; with wider intermediates (x87)
     * it does not hold, so such a build always asks dtoa. */
    (void)d, (void)digits, (void)nd, (void)point;
    return 0;
#else
    static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e9)) return 0;
    for (int k = 0; k <= 8; k++) {
        double scaled = a * POW10[k];
        if (scaled >= 1125899906842624.0) return 0; /* 2^50 */
        double m = nearbyint(scaled);
        if (m / POW10[k] != a) continue;
        char text[24];
        int len = fmt_digits(text, (uint64_t)m, 0);
        memcpy(digits, text, (size_t)len);
        *nd = len;
        *point = len - k; /* may be <= 0: leading zeros follow the point */
        return 1;
    }
    return 0;
#endif
}

/* A finite double as orjson writes it: the shortest round-trip digits (Python's repr has
 * the same), laid out as 1234.5, 0.00012345 (down to 10^-5), or 1.2345e+16 / 1e-7 from
 * 10^16 up and below 10^-5; integral values keep ".0". */
static int json_finite(Buf *b, double d) {
    if (buf_reserve(b, 32) != OK) return ERR;
    char *o = b->data + b->len;
    if (d == 0.0) {
        int len = signbit(d) ? 4 : 3;
        memcpy(o, signbit(d) ? "-0.0" : "0.0", (size_t)len);
        b->len += len;
        return OK;
    }
    if (d == floor(d) && fabs(d) < 9007199254740992.0) { /* an integer below 2^53 */
        int len = fmt_signed(o, (int64_t)d);
        memcpy(o + len, ".0", 2);
        b->len += len + 2;
        return OK;
    }
    char digits[32];
    int nd = 0, point = -1, kk, negative = 0;
    if (few_decimals(d, digits, &nd, &point)) {
        negative = d < 0;
        goto layout;
    }
    char *repr = PyOS_double_to_string(d, 'r', 0, 0, NULL);
    if (repr == NULL) return ERR;
    /* repr's digits (D) and where the decimal point falls in them (kk: the value is
     * 0.D x 10^kk) */
    const char *s = repr;
    long exponent = 0;
    if (*s == '-') {
        negative = 1;
        s++;
    }
    for (; *s && *s != 'e'; s++) {
        if (*s == '.') point = nd;
        else if (nd < 30) digits[nd++] = *s;
    }
    if (*s == 'e') exponent = strtol(s + 1, NULL, 10);
    PyMem_Free(repr);
    if (point < 0) point = nd;
    point += (int)exponent;
layout:;
    int lead = 0;
    while (lead < nd && digits[lead] == '0') lead++;
    while (nd > lead && digits[nd - 1] == '0') nd--;
    const char *D = digits + lead;
    int n = nd - lead;
    kk = point - lead;
    int len = 0;
    if (negative) o[len++] = '-';
    if (kk > 0 && kk <= 16) {
        if (n <= kk) {
            memcpy(o + len, D, (size_t)n);
            len += n;
            for (int k = n; k < kk; k++) o[len++] = '0';
            o[len++] = '.';
            o[len++] = '0';
        } else {
            memcpy(o + len, D, (size_t)kk);
            len += kk;
            o[len++] = '.';
            memcpy(o + len, D + kk, (size_t)(n - kk));
            len += n - kk;
        }
    } else if (kk <= 0 && kk > -5) {
        o[len++] = '0';
        o[len++] = '.';
        for (int k = 0; k < -kk; k++) o[len++] = '0';
        memcpy(o + len, D, (size_t)n);
        len += n;
    } else {
        o[len++] = D[0];
        if (n > 1) {
            o[len++] = '.';
            memcpy(o + len, D + 1, (size_t)(n - 1));
            len += n - 1;
        }
        int e = kk - 1;
        o[len++] = 'e';
        o[len++] = e < 0 ? '-' : '+';
        len += fmt_signed(o + len, e < 0 ? -e : e);
    }
    b->len += len;
    return OK;
}

int json_double(Buf *b, double d) {
    if (isnan(d)) return buf_raw(b, "\"NaN\"", 5);
    if (isinf(d)) return d > 0 ? buf_raw(b, "\"Infinity\"", 10) : buf_raw(b, "\"-Infinity\"", 11);
    return json_finite(b, d);
}

int json_pyvalue(Buf *b, PyObject *v, int depth) {
    if (depth > MAX_DEPTH) return DECLINE;
    if (v == Py_None) return buf_raw(b, "null", 4);
    if (v == Py_True) return buf_raw(b, "true", 4);
    if (v == Py_False) return buf_raw(b, "false", 5);
    if (PyUnicode_CheckExact(v)) return json_str_object(b, v);
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred()) return ERR;
        if (overflow) return DECLINE;
        char text[24];
        return buf_raw(b, text, fmt_signed(text, x));
    }
    if (PyFloat_CheckExact(v)) {
        double d = PyFloat_AS_DOUBLE(v);
        return isfinite(d) ? json_finite(b, d) : DECLINE; /* orjson writes null for them */
    }
    int rc = OK;
    if (PyList_CheckExact(v)) {
        if (buf_raw(b, "[", 1) != OK) return ERR;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v) && rc == OK; i++) {
            if (i && buf_raw(b, ",", 1) != OK) return ERR;
            rc = json_pyvalue(b, PyList_GET_ITEM(v, i), depth + 1);
        }
        return rc == OK ? buf_raw(b, "]", 1) : rc;
    }
    if (PyDict_CheckExact(v)) {
        Py_ssize_t pos = 0, count = 0;
        PyObject *key, *item;
        if (buf_raw(b, "{", 1) != OK) return ERR;
        while (rc == OK && PyDict_Next(v, &pos, &key, &item)) {
            if (!PyUnicode_CheckExact(key)) return DECLINE;
            if (count++ && buf_raw(b, ",", 1) != OK) return ERR;
            rc = json_str_object(b, key);
            if (rc == OK) rc = buf_raw(b, ":", 1);
            if (rc == OK) rc = json_pyvalue(b, item, depth + 1);
        }
        return rc == OK ? buf_raw(b, "}", 1) : rc;
    }
    return DECLINE;
}
