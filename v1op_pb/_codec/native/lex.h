/* A strict JSON reader for the text path (lex.c): RFC 8259 as orjson and json.loads read it,
 * one token at a time, straight from UTF-8 text. Anything it is unsure of (invalid text,
 * lone surrogates, digit runs orjson might read otherwise) it declines, as the core does.
 */
#ifndef V1OP_LEX_H
#define V1OP_LEX_H

#include "native.h"

typedef struct {
    const uint8_t *p, *end;
    Buf str; /* the contents of a string with escapes or non-ASCII, decoded and checked */
} Lx;

enum { K_STRING, K_INT, K_FLOAT, K_TRUE, K_FALSE, K_NULL, K_OBJECT, K_ARRAY };

typedef struct {
    int kind;
    const char *s;  /* K_STRING: contents (UTF-8, valid); numbers: the token's text */
    Py_ssize_t n;
    int ascii;      /* K_STRING: no byte >= 0x80 */
    int64_t i;      /* K_INT: its value (at most 18 digits) */
} Tok;

/* The next byte past whitespace (not consumed), or -1 at the end. */
static inline int lx_peek(Lx *x) {
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\n' || *x->p == '\r' || *x->p == '\t'))
        x->p++;
    return x->p < x->end ? *x->p : -1;
}

/* Consume c (past whitespace), or DECLINE. */
static inline int lx_expect(Lx *x, int c) {
    if (lx_peek(x) != c) return DECLINE;
    x->p++;
    return OK;
}

/* A scalar token: string, number, true, false or null; '{' and '[' give K_OBJECT and
 * K_ARRAY without consuming them. tok->s may point into x->str until the next string. */
int lx_token(Lx *x, Tok *tok);
/* A string token (only). */
int lx_string(Lx *x, Tok *tok);
/* Members of an object whose '{' is consumed: *more is 0 at its '}', else the key is in
 * key and its ':' consumed. first: no ',' before this member. */
int lx_member(Lx *x, int first, Tok *key, int *more);
/* Items of an array whose '[' is consumed, as lx_member. */
int lx_item(Lx *x, int first, int *more);
/* The text of a number token as a double, correctly rounded (its grammar already checked). */
int lx_double(const Tok *tok, double *out);

#endif
