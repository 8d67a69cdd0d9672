/* What parse_text.c (messages, fields, maps, scalars) and wkt_text.c (the well-known types)
 * share: the text path of decode. See parse_text.c.
 */
#ifndef V1OP_PARSE_TEXT_H
#define V1OP_PARSE_TEXT_H

#include "lex.h"

/* The bytes one field, map entry or Struct field was written to: put in order when its
 * object ends. */
typedef struct {
    Py_ssize_t start, end; /* its bytes in the buffer */
    int index;             /* a field: its index (number order) */
    Py_ssize_t rel;        /* a map entry: its key ends rel bytes before its end */
    Py_ssize_t kn;         /* ... and is kn bytes long */
    uint64_t u;            /* ... or an integer key's value */
    const char *k;
} Seg;

/* A growable array of segments, on the stack while small. */
#define SMALL 32 /* segments (and fields) kept on the stack */
typedef struct {
    Seg *items, small[SMALL];
    Py_ssize_t n, cap;
} Segs;

void segs_init(Segs *s);
void segs_free(Segs *s);
Seg *segs_add(Segs *s); /* NULL with MemoryError */
/* Sort map entries (or Struct fields) by key as parse.c does; a key twice declines. */
int sort_entries(Buf *b, Segs *s, int by_string);

/* parse_message, from text: the value of a message of type t. */
int tx_message(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth);
/* The members of a regular message's object, its '{' consumed (first: none read yet). */
int tx_fields(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth, int first);
/* parse_scalar, from a token. */
int tx_scalar(Ctx *ctx, Lx *x, Buf *b, const Field *f, int in_packed, int force);
/* parse_wkt, from text (wkt_text.c). */
int tx_wkt(Ctx *ctx, Lx *x, Buf *b, Table *t, int depth);

#endif
