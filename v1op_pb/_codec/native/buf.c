/* Output buffers, varints and base64: the byte-level pieces both directions share. */
#include "native.h"
#include <string.h>

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
    b->data = NULL;
    b->len = b->cap = 0;
}

int varint_size(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void put_varint(char *p, uint64_t v, Py_ssize_t *len) {
    Py_ssize_t i = *len;
    while (v >= 0x80) {
        p[i++] = (char)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    p[i++] = (char)v;
    *len = i;
}

int buf_varint(Buf *b, uint64_t v) {
    if (buf_reserve(b, 10) != OK) return ERR;
    put_varint(b->data, v, &b->len);
    return OK;
}

int buf_tag(Buf *b, uint32_t number, int wire_type) {
    return buf_varint(b, ((uint64_t)number << 3) | (uint64_t)wire_type);
}

int buf_raw(Buf *b, const void *p, Py_ssize_t n) {
    if (buf_reserve(b, n) != OK) return ERR;
    if (n) memcpy(b->data + b->len, p, (size_t)n);
    b->len += n;
    return OK;
}

int buf_fixed32(Buf *b, uint32_t v) {
    uint8_t out[4];
    for (int i = 0; i < 4; i++) out[i] = (uint8_t)(v >> (8 * i));
    return buf_raw(b, out, 4);
}

int buf_fixed64(Buf *b, uint64_t v) {
    uint8_t out[8];
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
    return buf_raw(b, out, 8);
}

int buf_close(Buf *b, Py_ssize_t start) {
    Py_ssize_t size = b->len - start;
    int n = varint_size((uint64_t)size);
    if (buf_reserve(b, n) != OK) return ERR;
    memmove(b->data + start + n, b->data + start, (size_t)size);
    Py_ssize_t at = start;
    put_varint(b->data, (uint64_t)size, &at);
    b->len += n;
    return OK;
}

int rd_varint(Rd *r, uint64_t *out) {
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

PyObject *base64_encode(const uint8_t *p, Py_ssize_t n) {
    if (n > (PY_SSIZE_T_MAX / 4) * 3 - 3) return PyErr_NoMemory();
    PyObject *out = PyUnicode_New(base64_size(n), 127);
    if (out == NULL) return NULL;
    base64_write((char *)PyUnicode_DATA(out), p, n);
    return out;
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
