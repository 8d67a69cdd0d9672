/* The native core of the JSON codec: shared declarations.
 *
 * The core reads only the tables plan.py builds (one Table per message type), never a
 * descriptor, and has one implementation per direction:
 *   parse.c  writes wire bytes from a stream of JSON values read from a source: lex.c reads
 *            JSON text, walk.c walks Python values (what json.loads or a caller made);
 *   emit.c   reads wire bytes and hands JSON to a sink: sink_text.c writes compact JSON
 *            text (byte for byte what orjson.dumps writes), sink_value.c builds Python values.
 * Each rule of the mapping is written once per direction, in the driver; sources and sinks
 * only read and write JSON.
 *
 * Every function returns OK, DECLINE (the core does not take the input: the Python codec
 * then runs on it and gives the answer or the ConversionError) or ERR (a Python exception
 * is set, such as MemoryError). The core never words an error of its own. All state is in
 * the module's state and the arguments; per-level state lives on the heap, so that C frames
 * stay small (nesting is at most MAX_DEPTH messages).
 */
#ifndef V1OP_NATIVE_H
#define V1OP_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { OK = 0, DECLINE = 1, ERR = -1 };

/* How deeply messages nest, as the Python codec counts it (MAX_DEPTH in jsontext.py). */
#define MAX_DEPTH 100

/* google.protobuf.FieldDescriptor.TYPE_* */
enum {
    T_DOUBLE = 1, T_FLOAT = 2, T_INT64 = 3, T_UINT64 = 4, T_INT32 = 5, T_FIXED64 = 6,
    T_FIXED32 = 7, T_BOOL = 8, T_STRING = 9, T_GROUP = 10, T_MESSAGE = 11, T_BYTES = 12,
    T_UINT32 = 13, T_ENUM = 14, T_SFIXED32 = 15, T_SFIXED64 = 16, T_SINT32 = 17,
    T_SINT64 = 18
};

/* Field flags, table flags and well-known-type tags: the module exports them (module.c),
 * and plan.py uses those, so that there is one definition. */
enum {
    F_REPEATED = 1, F_MAP = 2, F_PACKED = 4, F_PRESENCE = 8, F_OUTPUT_ONLY = 16,
    F_ENUM_CLOSED = 32, F_NULL_ENUM = 64
};
enum { TF_UNSUPPORTED = 1, TF_HAS_MAPS = 2, TF_HAS_REQUIRED = 4, TF_KEY_CLASH = 8 };
enum {
    W_NONE = 0, W_ANY = 1, W_DURATION = 2, W_FIELD_MASK = 3, W_LIST_VALUE = 4,
    W_STRUCT = 5, W_TIMESTAMP = 6, W_VALUE = 7, W_WRAPPER = 8
};

/* Conversions done and declined, per module (stats()). */
enum {
    C_PARSE, C_PARSE_DECLINED, C_EMIT, C_EMIT_DECLINED, C_EMIT_TEXT, C_EMIT_TEXT_DECLINED,
    C_PARSE_TEXT, C_PARSE_TEXT_DECLINED, N_COUNTS
};

typedef struct {
    PyTypeObject *table_type;
    PyObject *s_type, *s_value, *s_nan, *s_inf, *s_ninf, *s_fromstring, *s_serialize,
        *s_deterministic;
    Py_ssize_t counts[N_COUNTS];
} State;

struct Table;

/* One field, filled from a plan.FieldSpec; its objects are held by the table's refs. */
typedef struct {
    uint32_t number;
    int type, flags, oneof, decl_index; /* oneof: index of a oneof with other members, or -1 */
    PyObject *json_key;                 /* str: the key it is written under */
    const char *key;                    /* json_key's UTF-8 */
    Py_ssize_t key_n;
    const char *key_json;               /* its JSON text, quoted, with the ':' */
    Py_ssize_t key_json_n;
    PyObject *enum_names;               /* dict number -> first name, or NULL */
    PyObject *enum_numbers;             /* dict name -> number, or NULL */
    PyObject *unpopulated;              /* what emit_unpopulated writes when unset, or NULL */
    struct Table *sub;                  /* message type, or map entry type */
} Field;

typedef struct Table {
    PyObject_HEAD
    int ready, wkt, flags, nfields, noneofs;
    Field *fields;      /* by number */
    int *decl;          /* field indexes in declaration order */
    PyObject *refs;     /* what the spec held (a list): keeps what the fields point to */
    PyObject *keys;     /* a copy of spec.keys: JSON name and field name -> index */
    PyObject *cls;      /* the message class, or None */
    PyObject *name;     /* the full name, for repr */
    int16_t *by_number; /* dense lookup for numbers < dense */
    uint32_t dense;
    char *key_text;     /* the fields' key_json */
} Table;

/* The index of the field with this number, or -1: the one lookup by number. */
int field_index_slow(const Table *t, uint32_t number);
static inline int field_index(const Table *t, uint32_t number) {
    return number < t->dense ? t->by_number[number] : field_index_slow(t, number);
}
Table *field_sub(const Table *t, uint32_t number);

typedef struct {
    State *st;
    PyObject *resolver; /* url -> Table or None */
    PyObject *by_url;   /* the registry's dict url -> class, or NULL */
    PyObject *tables;   /* dict class -> Table of the classes resolved so far, or NULL */
    int ignore_unknown, omit_output_only, emit_unpopulated, repack_maps;
} Ctx;

Table *resolve_type(Ctx *ctx, PyObject *url, int *rc);

/* --- bytes ------------------------------------------------------------------------------ */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

int buf_grow(Buf *b, Py_ssize_t extra);
static inline int buf_reserve(Buf *b, Py_ssize_t extra) {
    return (b->cap - b->len >= extra) ? OK : buf_grow(b, extra);
}
void buf_free(Buf *b);
int buf_varint_slow(Buf *b, uint64_t v);
static inline int buf_varint(Buf *b, uint64_t v) {
    if (v >= 0x80 || b->len >= b->cap) return buf_varint_slow(b, v);
    b->data[b->len++] = (char)v; /* most tags and lengths */
    return OK;
}
static inline int buf_tag(Buf *b, uint32_t number, int wire_type) {
    return buf_varint(b, ((uint64_t)number << 3) | (uint64_t)wire_type);
}
int buf_raw(Buf *b, const void *p, Py_ssize_t n);
int buf_fixed(Buf *b, uint64_t v, int size);
/* A length-delimited record: its contents go after buf_open; buf_close puts their length
 * (minimally encoded, as every protobuf writer does) in front of them. */
static inline Py_ssize_t buf_open(Buf *b) { return b->len; }
int buf_close(Buf *b, Py_ssize_t start);
/* A growable array of n items of size bytes with room for need: OK or ERR. */
int vec_reserve(void **items, Py_ssize_t *cap, Py_ssize_t need, size_t size);

/* Reading wire bytes (each OK or DECLINE). */
typedef struct {
    const uint8_t *p, *end;
} Rd;
int rd_varint_slow(Rd *r, uint64_t *out);
static inline int rd_varint(Rd *r, uint64_t *out) {
    if (r->p < r->end && *r->p < 0x80) {
        *out = *r->p++;
        return OK;
    }
    return rd_varint_slow(r, out);
}
static inline int rd_fixed(Rd *r, int size, uint64_t *out) {
    if (r->end - r->p < size) return DECLINE;
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--) v = (v << 8) | r->p[i];
    r->p += size;
    *out = v;
    return OK;
}
static inline int rd_len(Rd *r, const uint8_t **p, Py_ssize_t *n) {
    uint64_t len;
    if (rd_varint(r, &len) != OK || len > (uint64_t)(r->end - r->p)) return DECLINE;
    *p = r->p;
    *n = (Py_ssize_t)len;
    r->p += len;
    return OK;
}
static inline int rd_skip(Rd *r, int wire_type) {
    uint64_t v;
    const uint8_t *p;
    Py_ssize_t n;
    switch (wire_type) {
    case 0: return rd_varint(r, &v);
    case 1: return rd_fixed(r, 8, &v);
    case 5: return rd_fixed(r, 4, &v);
    case 2: return rd_len(r, &p, &n);
    default: return DECLINE; /* groups: the tables mark their types unsupported */
    }
}
/* The wire type a field of this type is written with (packed repeated fields aside). */
static inline int wire_type(int type) {
    switch (type) {
    case T_DOUBLE: case T_FIXED64: case T_SFIXED64: return 1;
    case T_FLOAT: case T_FIXED32: case T_SFIXED32: return 5;
    case T_STRING: case T_BYTES: case T_MESSAGE: return 2;
    default: return 0;
    }
}

/* base64 (standard, padded) of n bytes into o (room for base64_size(n)), and proto3 JSON's
 * base64 text (either alphabet, padding optional) decoded into b. */
void base64_write(char *o, const uint8_t *p, Py_ssize_t n);
static inline Py_ssize_t base64_size(Py_ssize_t n) { return (n + 2) / 3 * 4; }
int base64_decode_into(Buf *b, const char *s, Py_ssize_t n);
/* Whether n bytes are UTF-8 as Python's strict decoder takes it (no surrogates, no overlong
 * forms, nothing past U+10FFFF); utf8_char: the length of the sequence at p, or 0. */
int utf8_char(const uint8_t *p, const uint8_t *end);
int utf8_valid(const uint8_t *p, Py_ssize_t n);
/* Decimal digits of x (after '-' when negative) into out (24 bytes); returns the length. */
int fmt_digits(char *out, uint64_t x, int negative);
static inline int fmt_signed(char *out, int64_t v) {
    return v < 0 ? fmt_digits(out, (uint64_t)0 - (uint64_t)v, 1) : fmt_digits(out, (uint64_t)v, 0);
}

/* --- the parse direction: sources of JSON values ------------------------------------------ */

enum { K_STRING, K_INT, K_FLOAT, K_TRUE, K_FALSE, K_NULL, K_OBJECT, K_ARRAY };

/* A JSON value as a source reads it: a scalar, or an object or array it has entered (its
 * members or items follow). Only the fields of its kind are set (they are set often). */
typedef struct {
    int kind;
    const char *s;  /* K_STRING: its UTF-8 (valid) */
    Py_ssize_t n;
    int ascii;      /* K_STRING: no byte >= 0x80 */
    PyObject *obj;  /* the Python object behind it (walk.c), or NULL (lex.c) */
    int neg, big;   /* K_INT: the sign; big: beyond 64 bits (only d holds it) */
    uint64_t mag;   /* K_INT: the magnitude */
    double d;       /* K_FLOAT: the value; K_INT: set when big */
} Ev;

typedef struct Src Src;
struct Src {
    int (*value)(Src *, Ev *);                   /* the next value */
    int (*member)(Src *, Ev *key, int *more);    /* the next member's key, or *more = 0 */
    int (*item)(Src *, int *more);               /* whether an item of the array follows */
    int (*skip)(Src *);                          /* the next value, unread */
    /* In the object just entered: the value of its "@type" member (a K_STRING), K_NULL when
     * the object is empty, DECLINE otherwise; *taken: the member was read (it came first),
     * else nothing was consumed. */
    int (*find_type)(Src *, Ev *url, int *taken);
};

typedef struct {
    Src src;
    const uint8_t *p, *end;
    int first;  /* no ',' before the next member or item */
    Buf str;    /* a string with escapes, decoded (NUL-terminated) */
} Lex;
void lex_init(Lex *x, const char *s, Py_ssize_t n);
int lex_done(Lex *x); /* nothing but whitespace is left */

typedef struct {
    PyObject *container; /* a strong reference */
    Py_ssize_t pos;
} Frame;
typedef struct {
    Src src;
    PyObject *pending;   /* the value the next value() reads (strong reference) */
    Frame *frames;
    Py_ssize_t n, cap;
    PyObject *s_type;    /* "@type" */
} Walk;
void walk_init(Walk *w, PyObject *root, PyObject *s_type);
void walk_free(Walk *w);

/* JSON -> wire: the contents of a message of type t, read from src (parse.c). */
int parse(Ctx *ctx, Src *src, Buf *b, Table *t);

/* --- the emit direction: sinks of JSON values --------------------------------------------- */

typedef struct Sink Sink;
struct Sink {
    int (*open)(Sink *, int bracket);  /* '{' or '[' */
    int (*close)(Sink *, int bracket);
    int (*field_key)(Sink *, const Field *f);
    /* Another member's key: obj (a str), or else its UTF-8 (DECLINE when it is not). */
    int (*key)(Sink *, PyObject *obj, const char *s, Py_ssize_t n);
    /* A string: UTF-8 (DECLINE when it is not), or ascii: plain ASCII (no escapes). */
    int (*str)(Sink *, const char *s, Py_ssize_t n, int ascii);
    int (*b64)(Sink *, const uint8_t *p, Py_ssize_t n);
    int (*integer)(Sink *, int64_t v);
    int (*number)(Sink *, double d); /* NaN and the infinities as their strings */
    int (*literal)(Sink *, int kind); /* K_TRUE, K_FALSE, K_NULL */
    int (*object)(Sink *, PyObject *v); /* a JSON value the table holds */
};

typedef struct {
    Sink sink;
    Buf b;
} TextSink;
void text_sink_init(TextSink *s);
/* A key's JSON text ("key":) appended to b. */
int json_key_text(Buf *b, const char *s, Py_ssize_t n);

typedef struct {
    Sink sink;
    State *st;
    PyObject *root, *key; /* the value made; a key waiting for its value */
    int owned;            /* whether key is a reference of the sink's own */
    PyObject **stack;     /* the open containers (borrowed: their parents hold them) */
    Py_ssize_t n, cap;
} ValueSink;
void value_sink_init(ValueSink *s, State *st);
void value_sink_free(ValueSink *s);

/* wire -> JSON: the message of type t in n bytes at p, to sink (emit.c). */
int emit(Ctx *ctx, Sink *sink, Table *t, const uint8_t *p, Py_ssize_t n);

/* --- Timestamp, Duration, FieldMask (wkt_time.c) ------------------------------------------ */

#define WKT_TEXT_MAX 40
/* Their JSON strings (ASCII) to wire, and the wire to text (unquoted; -1 or DECLINE when the
 * core declines it). */
int timestamp_from_text(Buf *b, const char *s, Py_ssize_t n);
int duration_from_text(Buf *b, const char *s, Py_ssize_t n);
int field_mask_from_text(Buf *b, const char *s, Py_ssize_t n);
int timestamp_text(const uint8_t *p, Py_ssize_t n, char *text);
int duration_text(const uint8_t *p, Py_ssize_t n, char *text);
int field_mask_text(const uint8_t *p, Py_ssize_t n, Buf *out);

#endif
