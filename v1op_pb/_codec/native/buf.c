/* The byte-level pieces both directions share: output buffers, growable arrays, varints and
 * fixed-width values both ways, base64 both ways, UTF-8 validation, decimal digits.
 */
#include "native.h"

int buf_grow(Buf *b, Py_ssize_t extra) {
    if (extra > PY_SSIZE_T_MAX / 2 - b->len) {
        PyErr_NoMemory();
        return ERR;
    }
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    b->data = data;
    b->cap = cap;
    return OK;
}

void buf_free(Buf *b) {
    PyMem_Free(b->data);
    *b = (Buf){0};
}

int vec_reserve(void **items, Py_ssize_t *cap, Py_ssize_t need, size_t size) {
    if (need <= *cap) return OK;
    Py_ssize_t grown = *cap ? *cap : 16;
    while (grown < need) grown *= 2;
    void *more = (size_t)grown <= PY_SSIZE_T_MAX / size
                     ? PyMem_Realloc(*items, (size_t)grown * size) : NULL;
    if (more == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    *items = more;
    *cap = grown;
    return OK;
}

static inline Py_ssize_t put_varint(char *p, uint64_t v) {
    Py_ssize_t i = 0;
    while (v >= 0x80) {
        p[i++] = (char)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    p[i++] = (char)v;
    return i;
}

int buf_varint_slow(Buf *b, uint64_t v) {
    if (buf_reserve(b, 10) != OK) return ERR;
    b->len += put_varint(b->data + b->len, v);
    return OK;
}

int buf_raw(Buf *b, const void *p, Py_ssize_t n) {
    if (buf_reserve(b, n) != OK) return ERR;
    if (n) memcpy(b->data + b->len, p, (size_t)n);
    b->len += n;
    return OK;
}

int buf_fixed(Buf *b, uint64_t v, int size) {
    uint8_t out[8];
    for (int i = 0; i < size; i++) out[i] = (uint8_t)(v >> (8 * i));
    return buf_raw(b, out, size);
}

int buf_close(Buf *b, Py_ssize_t start) {
    Py_ssize_t size = b->len - start;
    char head[10];
    Py_ssize_t n = put_varint(head, (uint64_t)size);
    if (buf_reserve(b, n) != OK) return ERR;
    memmove(b->data + start + n, b->data + start, (size_t)size);
    memcpy(b->data + start, head, (size_t)n);
    b->len += n;
    return OK;
}

int rd_varint_slow(Rd *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return DECLINE;
        uint8_t byte = *r->p++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return OK;
        }
    }
    return DECLINE; /* longer than ten bytes */
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_write(char *o, const uint8_t *p, Py_ssize_t n) {
    Py_ssize_t i = 0, j = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        o[j++] = B64[v >> 18];
        o[j++] = B64[(v >> 12) & 63];
        o[j++] = B64[(v >> 6) & 63];
        o[j++] = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        o[j++] = B64[v >> 18];
        o[j++] = B64[(v >> 12) & 63];
        o[j++] = (i + 1 < n) ? B64[(v >> 6) & 63] : '=';
        o[j++] = '=';
    }
}

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* What scalars.decode_bytes accepts: the alphabets mixed, at most two '=' at the end, and
 * after dropping them a length that base64 allows (not 1 mod 4). Anything else declines. */
int base64_decode_into(Buf *b, const char *s, Py_ssize_t n) {
    Py_ssize_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 3) {
        n--;
        pad++;
    }
    if (pad > 2 || n % 4 == 1) return DECLINE;
    if (buf_reserve(b, n / 4 * 3 + 3) != OK) return ERR;
    uint8_t *o = (uint8_t *)b->data + b->len;
    Py_ssize_t j = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) return DECLINE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[j++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    b->len += j;
    return OK;
}

int utf8_char(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0], lo = 0x80, hi = 0xBF;
    int n;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c == 0xE0) n = 3, lo = 0xA0;
    else if (c == 0xED) n = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) n = 3;
    else if (c == 0xF0) n = 4, lo = 0x90;
    else if (c == 0xF4) n = 4, hi = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3) n = 4;
    else return 0;
    if (end - p < n || p[1] < lo || p[1] > hi) return 0;
    for (int k = 2; k < n; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return n;
}

int utf8_valid(const uint8_t *p, Py_ssize_t n) {
    const uint8_t *end = p + n;
    while (p < end) {
        uint64_t w;
        if (end - p >= 8 && (memcpy(&w, p, 8), !(w & 0x8080808080808080ULL))) {
            p += 8;
        } else if (*p < 0x80) {
            p++;
        } else {
            int len = utf8_char(p, end);
            if (len == 0) return 0;
            p += len;
        }
    }
    return 1;
}

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
