/* The native core of the JSON codec: shared declarations.
 *
 * The core reads only the tables that v1op_pb/_codec/plan.py builds (one Table per message
 * type); it never looks at a descriptor. Every function returns one of three outcomes:
 * OK, DECLINE (the input is something the core does not accept: the Python codec then runs
 * on the same input and gives the answer or the error) or ERR (a Python exception is set,
 * such as MemoryError). The core never words an error of its own.
 */
#ifndef V1OP_NATIVE_H
#define V1OP_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

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

/* Field flags (plan.py spells the same bits). */
enum {
    F_REPEATED = 1, F_MAP = 2, F_PACKED = 4, F_PRESENCE = 8, F_OUTPUT_ONLY = 16,
    F_ENUM_CLOSED = 32, F_NULL_ENUM = 64
};

/* Well-known types with a JSON form of their own. */
enum {
    W_NONE = 0, W_ANY = 1, W_DURATION = 2, W_FIELD_MASK = 3, W_LIST_VALUE = 4,
    W_STRUCT = 5, W_TIMESTAMP = 6, W_VALUE = 7, W_WRAPPER = 8
};

/* Table flags. */
enum { TF_UNSUPPORTED = 1, TF_HAS_MAPS = 2, TF_HAS_REQUIRED = 4 };
/* Set by Table.init itself: some field's JSON name (json_key) is not its key in keys. */
enum { TF_KEY_CLASH = 1 << 16 };

struct Table;

typedef struct {
    uint32_t number;
    int type;
    int flags;
    int oneof;               /* index of a oneof with other members, or -1 */
    int decl_index;          /* position in declaration order */
    PyObject *json_key;      /* str: the key this field is written under */
    PyObject *enum_names;    /* dict int -> first name (emit), or NULL */
    PyObject *enum_numbers;  /* dict name -> int (parse), or NULL */
    struct Table *sub;       /* message type, or map entry type */
    PyObject *unpopulated;   /* JSON value emit_unpopulated writes for it when unset */
} Field;

typedef struct Table {
    PyObject_HEAD
    int ready;
    int wkt;
    int flags;
    int nfields;
    int noneofs;
    Field *fields;           /* sorted by number */
    int *decl;               /* field indexes in declaration order */
    PyObject *keys;          /* dict: JSON name and field name -> index into fields */
    PyObject *cls;           /* the message class (for Any payloads with maps) */
    PyObject *refs;          /* what the fields point to, kept alive */
    PyObject *name;          /* full name, for repr */
    int16_t *by_number;      /* dense lookup for numbers < dense */
    uint32_t dense;
} Table;

extern PyTypeObject TableType;

/* Interned strings and objects shared by the files (set once at module import). */
typedef struct {
    PyObject *s_type;        /* "@type" */
    PyObject *s_value;       /* "value" */
    PyObject *s_fromstring;  /* "FromString" */
    PyObject *s_serialize;   /* "SerializeToString" */
    PyObject *s_nan, *s_inf, *s_ninf;
    PyObject *s_number_value; /* "numberValue" */
    PyObject *s_deterministic; /* "deterministic" */
} Consts;
extern Consts C;

/* A growable output buffer, one per conversion (no static state). */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

int buf_grow(Buf *b, Py_ssize_t extra);
static inline int buf_reserve(Buf *b, Py_ssize_t extra) {
    return (b->cap - b->len >= extra) ? OK : buf_grow(b, extra);
}
void buf_free(Buf *b);
int buf_varint(Buf *b, uint64_t v);
int buf_tag(Buf *b, uint32_t number, int wire_type);
int buf_raw(Buf *b, const void *p, Py_ssize_t n);
int buf_fixed32(Buf *b, uint32_t v);
int buf_fixed64(Buf *b, uint64_t v);
/* A length-delimited record: write its contents after buf_open, then buf_close puts the
 * length (minimally encoded, as every protobuf writer does) in front of them. */
static inline Py_ssize_t buf_open(Buf *b) { return b->len; }
int buf_close(Buf *b, Py_ssize_t start);
int varint_size(uint64_t v);

/* Reading wire bytes. */
typedef struct {
    const uint8_t *p, *end;
} Rd;
int rd_varint(Rd *r, uint64_t *out); /* OK or DECLINE */
/* The same, with the one-byte case (most tags and lengths) inline. */
static inline int rd_varint1(Rd *r, uint64_t *out) {
    if (r->p < r->end && *r->p < 0x80) {
        *out = *r->p++;
        return OK;
    }
    return rd_varint(r, out);
}

/* base64 (standard, padded) text of bytes; NULL with an exception on failure. */
PyObject *base64_encode(const uint8_t *p, Py_ssize_t n);
/* The same text into o, which has room for base64_size(n) characters. */
void base64_write(char *o, const uint8_t *p, Py_ssize_t n);
static inline Py_ssize_t base64_size(Py_ssize_t n) { return (n + 2) / 3 * 4; }
/* Decode proto3 JSON base64 text (either alphabet, padding optional) into b. */
int base64_decode_into(Buf *b, const char *s, Py_ssize_t n);

/* A conversion's context: what the caller passed. */
typedef struct {
    PyObject *resolver;      /* url -> Table or None */
    PyObject *by_url;        /* the registry's dict url -> class, or NULL */
    PyObject *tables;        /* dict class -> Table of the classes resolved so far */
    int ignore_unknown;
    int omit_output_only;
    int emit_unpopulated;
    int repack_maps;         /* have the runtime re-serialize Any payloads holding maps */
} Ctx;

Table *resolve_type(Ctx *ctx, PyObject *url, int *outcome);

/* JSON value -> wire (parse.c). Writes the contents of a message of type t. */
int parse_message(Ctx *ctx, Buf *b, Table *t, PyObject *value, int depth, int skip_type);
int parse_scalar(Ctx *ctx, Buf *b, const Field *f, PyObject *v, int in_packed, int force);
int map_order_str(const char *a, Py_ssize_t an, const char *b, Py_ssize_t bn);
/* A map entry's key as read (s, n: its UTF-8; u: its value as written, for integer keys). */
typedef struct {
    PyObject *key, *item;
    const char *s;
    Py_ssize_t n;
    int64_t i;
    uint64_t u;
} Entry;
int map_key(const Field *kf, PyObject *key, Entry *e);
int write_map_key(Buf *b, const Field *kf, const Entry *e);
/* A field given as JSON null; whether null sets it (a Value, a NullValue enum). */
int parse_null(Ctx *ctx, Buf *b, const Field *f);
int sets_on_null(const Field *f);

/* wire -> JSON value (emit.c). */
int emit_message(Ctx *ctx, Table *t, const uint8_t *p, Py_ssize_t n, int depth,
                 PyObject **out, PyObject *into);
int emit_scalar(const Field *f, int wire_type, Rd *r, PyObject **out);
int field_wire_type(int type); /* the wire type a field of this type is written with */

/* Map entries in JSON order (maps.c): keys sorted, see there. */
typedef struct {
    const uint8_t *key;      /* a string key's bytes */
    Py_ssize_t key_n;
    uint64_t order;          /* other keys: unsigned comparison orders them */
    int is_signed;           /* order holds a signed value biased by 2^63 */
    int has_value;
    const uint8_t *value, *value_end; /* the value's wire form, after its tag */
} MapEntry;
typedef struct {
    MapEntry *items;
    Py_ssize_t n, cap;
} MapList;
void map_list_free(MapList *m);
int map_entry_read(const Table *et, const uint8_t *p, Py_ssize_t n, MapEntry *e);
int map_list_add(MapList *m, const Table *et, const uint8_t *p, Py_ssize_t n);
/* Sorts; DECLINE when a key is there twice. */
int map_list_sort(MapList *m, int key_type);
/* A Struct's entries (key, Value bytes), sorted. */
int struct_entries(const uint8_t *p, Py_ssize_t n, MapList *m);
/* The JSON key text of an integer or bool key into out (24 bytes); returns its length. */
int map_key_digits(const MapEntry *e, int key_type, char *out);
/* Skip one value of wire type wt. */
int wire_skip(Rd *r, int wt);

/* JSON text as orjson.dumps writes it (jsonfmt.c), appended to a Buf. */
int fmt_digits(char *out, uint64_t x, int negative); /* into 24 bytes; returns the length */
int fmt_signed(char *out, int64_t v);
int json_string(Buf *b, const uint8_t *p, Py_ssize_t n); /* DECLINE when not UTF-8 */
int json_str_object(Buf *b, PyObject *s);
int json_double(Buf *b, double d); /* NaN and the infinities as the strings encode gives */
int json_pyvalue(Buf *b, PyObject *v, int depth); /* what encode's values hold */
int float_shortest(float f, double *out);

/* wire -> JSON text (emit_text.c, emit_text_wkt.c). first == NULL: the message's own JSON
 * value; else its fields go into an object already open (an Any's), *first saying whether
 * nothing was written in it yet. */
int text_message(Ctx *ctx, Buf *b, Table *t, const uint8_t *p, Py_ssize_t n, int depth,
                 int *first);
int text_scalar(Buf *b, const Field *f, int wire_type, Rd *r, int *is_default);
int text_wkt(Ctx *ctx, Buf *b, Table *t, const uint8_t *p, Py_ssize_t n, int depth);

/* Well-known types (wkt.c, wkt_time.c, wkt_any.c). */
int parse_wkt(Ctx *ctx, Buf *b, Table *t, PyObject *value, int depth);
int emit_wkt(Ctx *ctx, Table *t, const uint8_t *p, Py_ssize_t n, int depth, PyObject **out);
/* One unit per type, as JSON values (wkt_time.c, wkt_any.c); emit_wkt and parse_wkt
 * dispatch to them. */
int parse_timestamp(Buf *b, PyObject *v);
int parse_duration(Buf *b, PyObject *v);
int parse_field_mask(Buf *b, PyObject *v);
int parse_any(Ctx *ctx, Buf *b, PyObject *v, int depth);
int emit_timestamp(const uint8_t *p, Py_ssize_t n, PyObject **out);
int emit_duration(const uint8_t *p, Py_ssize_t n, PyObject **out);
int emit_field_mask(const uint8_t *p, Py_ssize_t n, PyObject **out);
int emit_any(Ctx *ctx, const uint8_t *p, Py_ssize_t n, int depth, PyObject **out);
/* A run of wire bytes. */
typedef struct {
    const uint8_t *p;
    Py_ssize_t n;
} Span;
/* An Any's type URL and value fields, for both emitters (OK or DECLINE), and the URL as a
 * str (NULL with *rc DECLINE or ERR). */
int any_parts(const uint8_t *p, Py_ssize_t n, Span *url, Span *value);
PyObject *any_url(Span url, int *rc);
/* The JSON text (unquoted) of a Timestamp's or Duration's wire form into text (room for
 * WKT_TEXT_MAX); its length, or -1 when the core declines it. */
#define WKT_TEXT_MAX 40
int timestamp_text(const uint8_t *p, Py_ssize_t n, char *text);
int duration_text(const uint8_t *p, Py_ssize_t n, char *text);
/* A FieldMask's JSON text (unquoted), appended to out: OK, DECLINE or ERR. */
int field_mask_text(const uint8_t *p, Py_ssize_t n, Buf *out);
/* The string forms, from ASCII text (n bytes at s). */
int parse_timestamp_text(Buf *b, const char *s, Py_ssize_t n);
int parse_duration_text(Buf *b, const char *s, Py_ssize_t n);
int parse_field_mask_text(Buf *b, const char *s, Py_ssize_t n);
int write_any(Ctx *ctx, Buf *b, Table *inner, const char *url, Py_ssize_t n, Buf *payload);

/* JSON text (n bytes of UTF-8 at s) -> wire in one pass (parse_text.c, reading with lex.c):
 * the bytes parse_message writes for the value jsontext.loads reads from it, or DECLINE. */
int parse_text(Ctx *ctx, Buf *b, Table *t, const char *s, Py_ssize_t n);

#endif
