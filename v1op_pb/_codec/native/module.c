/* The module v1op_pb._codec._native: the Table type (one per message type, filled from
 * plan.TableSpec) and the conversions.
 *
 *   decode(table, value, ignore_unknown, resolver, by_url, tables, repack_maps) -> bytes
 *   decode_text(table, text, <the same>) -> bytes: decode of jsontext.loads(text)
 *   encode(table, data, omit_output_only, emit_unpopulated, resolver, by_url, tables) -> value
 *   encode_text(<the same>) -> bytes: orjson.dumps of what encode returns
 * each NotImplemented when the core declines. resolver(type_url) -> Table or None resolves
 * an Any's type through the codec's registry; by_url (the registry's URL -> class cache) and
 * tables (class -> Table) answer first, so that only a miss calls back into Python.
 *
 * Multi-phase initialisation (PEP 489): the Table type and the counts are per module; a
 * conversion's state is in its arguments, so conversions may run in several threads.
 */
#include "native.h"
#include <stddef.h>

/* --- tables ------------------------------------------------------------------------------- */

static int table_traverse(Table *t, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->keys);
    Py_VISIT(t->cls);
    Py_VISIT(t->refs);
    return 0;
}

#define FREE(p) (PyMem_Free(p), (p) = NULL)

static int table_clear(Table *t) {
    t->ready = t->nfields = 0;
    FREE(t->fields);
    FREE(t->decl);
    FREE(t->by_number);
    FREE(t->key_text);
    Py_CLEAR(t->keys);
    Py_CLEAR(t->cls);
    Py_CLEAR(t->refs);
    Py_CLEAR(t->name);
    return 0;
}

static void table_dealloc(Table *t) {
    PyTypeObject *type = Py_TYPE(t);
    PyObject_GC_UnTrack(t);
    table_clear(t);
    type->tp_free((PyObject *)t);
    Py_DECREF(type);
}

static PyObject *table_repr(Table *t) {
    return PyUnicode_FromFormat("<native table of %S>", t->name ? t->name : Py_None);
}

/* spec.<name>, kept alive by t->refs (the fields borrow it); NULL with an exception. */
static PyObject *attr(Table *t, PyObject *spec, const char *name) {
    PyObject *v = PyObject_GetAttrString(spec, name);
    if (v == NULL) return NULL;
    int rc = PyList_Append(t->refs, v);
    Py_DECREF(v);
    return rc < 0 ? NULL : v;
}

static int int_attr(PyObject *spec, const char *name, long lo, long hi, int *out) {
    PyObject *v = PyObject_GetAttrString(spec, name);
    long x = v ? PyLong_AsLong(v) : -1;
    Py_XDECREF(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x < lo || x > hi) {
        PyErr_Format(PyExc_ValueError, "%s out of range: %ld", name, x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int bad(const char *what) {
    PyErr_Format(PyExc_ValueError, "bad field spec: %s", what);
    return -1;
}

/* One field from a plan.FieldSpec. */
static int field_from_spec(Table *t, Field *f, PyObject *spec, int n, int noneofs) {
    int number;
    PyObject *json_name, *names, *numbers, *sub, *unpopulated;
    if (int_attr(spec, "number", 1, (1 << 29) - 1, &number) < 0 ||
        int_attr(spec, "type", T_DOUBLE, T_SINT64, &f->type) < 0 ||
        int_attr(spec, "flags", 0, 127, &f->flags) < 0 ||
        int_attr(spec, "oneof", -1, noneofs - 1, &f->oneof) < 0 ||
        int_attr(spec, "decl_index", 0, n - 1, &f->decl_index) < 0 ||
        !(json_name = attr(t, spec, "json_name")) || !(names = attr(t, spec, "enum_names")) ||
        !(numbers = attr(t, spec, "enum_numbers")) || !(sub = attr(t, spec, "sub")) ||
        !(unpopulated = attr(t, spec, "unpopulated")))
        return -1;
    f->number = (uint32_t)number;
    if (!PyUnicode_CheckExact(json_name) || !(f->key = PyUnicode_AsUTF8AndSize(json_name, &f->key_n)))
        return PyErr_Occurred() ? -1 : bad("json_name");
    f->json_key = json_name;
    if (names != Py_None || f->type == T_ENUM) {
        if (!PyDict_CheckExact(names) || !PyDict_CheckExact(numbers)) return bad("enum tables");
        f->enum_names = names;
        f->enum_numbers = numbers;
    }
    if (sub != Py_None || f->type == T_MESSAGE || (f->flags & F_MAP)) {
        if (Py_TYPE(sub) != Py_TYPE(t) || f->type != T_MESSAGE) return bad("sub");
        f->sub = (Table *)sub;
    }
    if ((f->flags & F_MAP) && !(f->flags & F_REPEATED)) return bad("flags");
    if (unpopulated != Py_None) {
        if (!PyTuple_CheckExact(unpopulated) || PyTuple_GET_SIZE(unpopulated) != 1)
            return bad("unpopulated must be a 1-tuple or None");
        f->unpopulated = PyTuple_GET_ITEM(unpopulated, 0);
    }
    return 0;
}

/* Whether a well-known type's table has the one field its JSON form is made of. */
static int wkt_shape(const Table *t) {
    const Field *f = t->fields;
    switch (t->wkt) {
    case W_STRUCT: return t->nfields == 1 && (f->flags & F_MAP);
    case W_LIST_VALUE: return t->nfields == 1 && (f->flags & F_REPEATED) && f->type == T_MESSAGE && !(f->flags & F_MAP);
    case W_WRAPPER: return t->nfields == 1 && !(f->flags & F_REPEATED) && f->type != T_MESSAGE;
    default: return 1;
    }
}

/* Table.init(spec): spec a plan.TableSpec (name, wkt, flags, fields: FieldSpecs sorted by
 * number, keys, noneofs, cls). */
static PyObject *table_init(Table *t, PyObject *spec) {
    if (t->ready || t->refs) {
        PyErr_SetString(PyExc_RuntimeError, "table already initialised");
        return NULL;
    }
    if ((t->refs = PyList_New(0)) == NULL) return NULL;
    PyObject *fields, *keys, *k, *v;
    int noneofs, flags;
    if (!(t->name = Py_XNewRef(attr(t, spec, "name"))) ||
        int_attr(spec, "wkt", W_NONE, W_WRAPPER, &t->wkt) < 0 ||
        int_attr(spec, "flags", 0, TF_UNSUPPORTED | TF_HAS_MAPS | TF_HAS_REQUIRED, &flags) < 0 ||
        int_attr(spec, "noneofs", 0, INT_MAX, &noneofs) < 0 ||
        !(fields = attr(t, spec, "fields")) || !(keys = attr(t, spec, "keys")) ||
        !(t->cls = Py_XNewRef(attr(t, spec, "cls"))))
        goto fail;
    if (!PyTuple_CheckExact(fields) || !PyDict_CheckExact(keys)) {
        PyErr_SetString(PyExc_TypeError, "fields must be a tuple and keys a dict");
        goto fail;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(fields);
    if (n > 30000 || noneofs > 64) flags |= TF_UNSUPPORTED;
    t->fields = PyMem_Calloc((size_t)n + 1, sizeof(Field));
    t->decl = PyMem_Calloc((size_t)n + 1, sizeof(int));
    if (t->fields == NULL || t->decl == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    t->nfields = (int)n;
    t->noneofs = noneofs;
    for (int i = 0; i < n; i++) {
        Field *f = &t->fields[i];
        if (field_from_spec(t, f, PyTuple_GET_ITEM(fields, i), (int)n, noneofs) < 0) goto fail;
        if (i > 0 && f->number <= f[-1].number) {
            bad("fields must be sorted by number");
            goto fail;
        }
        t->decl[f->decl_index] = i;
        if (f->type == T_GROUP) flags |= TF_UNSUPPORTED;
    }
    if (!wkt_shape(t)) flags |= TF_UNSUPPORTED;
    uint32_t max = n ? t->fields[n - 1].number : 0;
    t->dense = max < 1024 ? max + 1 : 1024;
    if ((t->by_number = PyMem_Malloc(sizeof(int16_t) * t->dense)) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (uint32_t i = 0; i < t->dense; i++) t->by_number[i] = -1;
    for (int i = 0; i < n && !(flags & TF_UNSUPPORTED); i++)
        if (t->fields[i].number < t->dense) t->by_number[t->fields[i].number] = (int16_t)i;
    /* a copy, checked: the core indexes fields with its values */
    if ((t->keys = PyDict_Copy(keys)) == NULL) goto fail;
    for (Py_ssize_t pos = 0; PyDict_Next(t->keys, &pos, &k, &v);) {
        Py_ssize_t index = PyLong_CheckExact(v) ? PyLong_AsSsize_t(v) : -1;
        if (!PyUnicode_CheckExact(k) || index < 0 || index >= n) {
            if (!PyErr_Occurred()) bad("keys");
            goto fail;
        }
    }
    Buf text = {0};
    for (int i = 0; i < n; i++) { /* a JSON name that names another field; the keys' text */
        Field *f = &t->fields[i];
        PyObject *index = PyDict_GetItemWithError(t->keys, f->json_key);
        int rc = index == NULL && PyErr_Occurred() ? ERR : json_key_text(&text, f->key, f->key_n);
        t->key_text = text.data; /* (table_clear frees it) */
        if (rc != OK) goto fail;
        if (index == NULL || PyLong_AsSsize_t(index) != i) flags |= TF_KEY_CLASH;
        f->key_json_n = text.len; /* where it ends, until the text stops moving */
    }
    for (int i = (int)n - 1; i >= 0; i--) {
        Py_ssize_t start = i ? t->fields[i - 1].key_json_n : 0;
        t->fields[i].key_json = t->key_text + start;
        t->fields[i].key_json_n -= start;
    }
    t->flags = flags;
    t->ready = 1;
    Py_RETURN_NONE;
fail:
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad table spec");
    table_clear(t);
    return NULL;
}

int field_index_slow(const Table *t, uint32_t number) {
    int lo = 0, hi = t->nfields - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->fields[mid].number == number) return mid;
        if (t->fields[mid].number < number) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

Table *field_sub(const Table *t, uint32_t number) {
    int i = field_index(t, number);
    return i < 0 ? NULL : t->fields[i].sub;
}

static PyMethodDef table_methods[] = {
    {"init", (PyCFunction)table_init, METH_O, "init(spec): fill the table (once)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot table_slots[] = {
    {Py_tp_doc, "The compact table the native codec reads for one message type."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, table_dealloc},
    {Py_tp_traverse, table_traverse},
    {Py_tp_clear, table_clear},
    {Py_tp_repr, table_repr},
    {Py_tp_methods, table_methods},
    {0, NULL},
};

static PyType_Spec table_spec = {
    "v1op_pb._codec._native.Table", sizeof(Table), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, table_slots,
};

/* --- conversions -------------------------------------------------------------------------- */

Table *resolve_type(Ctx *ctx, PyObject *url, int *rc) {
    PyObject *found = NULL;
    *rc = ERR;
    if (ctx->by_url != NULL) {
        /* wkt.resolve_type looks at the registry's own cache of URLs first: a URL there
         * whose class has a table needs no call into Python */
        PyObject *cls = PyDict_GetItemWithError(ctx->by_url, url);
        if (cls != NULL) found = Py_XNewRef(PyDict_GetItemWithError(ctx->tables, cls));
        if (PyErr_Occurred()) return NULL;
    }
    if (found == NULL && (found = PyObject_CallOneArg(ctx->resolver, url)) == NULL) return NULL;
    Table *t = (Table *)found;
    *rc = DECLINE; /* a type the registry does not know, a malformed URL, required fields */
    if (Py_TYPE(found) != ctx->st->table_type || !t->ready ||
        (t->flags & (TF_UNSUPPORTED | TF_HAS_REQUIRED))) {
        Py_DECREF(found);
        return NULL;
    }
    *rc = OK;
    return t;
}

static PyObject *finish(State *st, int rc, int done, int declined, PyObject *out) {
    if (rc != ERR && done >= 0) st->counts[rc == OK ? done : declined]++;
    if (rc == DECLINE) Py_XSETREF(out, Py_NewRef(Py_NotImplemented));
    if (rc == ERR) Py_CLEAR(out);
    return out;
}

/* The context from a call's arguments (positional, no format string: these run once per
 * conversion). reading: decode's flags, else encode's. */
static int context(PyObject *self, PyObject *const *args, Py_ssize_t nargs, int reading, Ctx *ctx) {
    State *st = PyModule_GetState(self);
    if (nargs != 7 || Py_TYPE(args[0]) != st->table_type) {
        PyErr_SetString(PyExc_TypeError, "expected (table, input, flag, flag, resolver, by_url, tables)");
        return -1;
    }
    PyObject *by_url = reading ? args[4] : args[5], *tables = reading ? args[5] : args[6];
    int exact = PyDict_CheckExact(by_url) && PyDict_CheckExact(tables);
    int first = PyObject_IsTrue(args[2]), second = PyObject_IsTrue(reading ? args[6] : args[3]);
    if (first < 0 || second < 0) return -1;
    *ctx = (Ctx){.st = st, .resolver = reading ? args[3] : args[4], .by_url = exact ? by_url : NULL,
                 .tables = exact ? tables : NULL};
    if (reading) ctx->ignore_unknown = first, ctx->repack_maps = second;
    else ctx->omit_output_only = first, ctx->emit_unpopulated = second;
    return 0;
}

static PyObject *wire(Buf *b) { return PyBytes_FromStringAndSize(b->data ? b->data : "", b->len); }

static PyObject *native_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Ctx ctx;
    if (context(self, args, nargs, 1, &ctx) < 0) return NULL;
    Walk w;
    Buf b = {0};
    walk_init(&w, args[1], ctx.st->s_type);
    int rc = parse(&ctx, &w.src, &b, (Table *)args[0]);
    walk_free(&w);
    PyObject *out = rc == OK ? wire(&b) : NULL;
    buf_free(&b);
    if (rc == OK && out == NULL) rc = ERR;
    /* plan.py's probe of the runtime (no resolver) is not a conversion to count */
    return finish(ctx.st, rc, args[3] == Py_None ? -1 : C_PARSE, C_PARSE_DECLINED, out);
}

static PyObject *native_decode_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Ctx ctx;
    if (context(self, args, nargs, 1, &ctx) < 0) return NULL;
    PyObject *data = args[1], *out = NULL;
    const char *s = NULL;
    Py_ssize_t n = 0;
    int rc = DECLINE;
    if (PyBytes_CheckExact(data)) {
        s = PyBytes_AS_STRING(data);
        n = PyBytes_GET_SIZE(data);
    } else if (PyUnicode_CheckExact(data) && (s = PyUnicode_AsUTF8AndSize(data, &n)) == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return NULL;
        PyErr_Clear(); /* surrogates: jsontext and the Python codec say what is wrong */
    }
    if (s != NULL) {
        Lex x;
        Buf b = {0};
        lex_init(&x, s, n);
        Py_INCREF(data); /* its bytes are read while the registry's Python code may run */
        rc = parse(&ctx, &x.src, &b, (Table *)args[0]);
        if (rc == OK && !lex_done(&x)) rc = DECLINE; /* something after the value */
        Py_DECREF(data);
        buf_free(&x.str);
        if (rc == OK && (out = wire(&b)) == NULL) rc = ERR;
        buf_free(&b);
    }
    if (rc == OK) ctx.st->counts[C_PARSE]++;
    return finish(ctx.st, rc, C_PARSE_TEXT, C_PARSE_TEXT_DECLINED, out);
}

static PyObject *native_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Ctx ctx;
    if (context(self, args, nargs, 0, &ctx) < 0 || !PyBytes_CheckExact(args[1])) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "encode() needs bytes");
        return NULL;
    }
    ValueSink sink;
    value_sink_init(&sink, ctx.st);
    PyObject *data = Py_NewRef(args[1]);
    int rc = emit(&ctx, &sink.sink, (Table *)args[0], (const uint8_t *)PyBytes_AS_STRING(data),
                  PyBytes_GET_SIZE(data));
    Py_DECREF(data);
    PyObject *out = rc == OK ? Py_XNewRef(sink.root) : NULL;
    value_sink_free(&sink);
    return finish(ctx.st, rc, C_EMIT, C_EMIT_DECLINED, out);
}

static PyObject *native_encode_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Ctx ctx;
    if (context(self, args, nargs, 0, &ctx) < 0 || !PyBytes_CheckExact(args[1])) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "encode_text() needs bytes");
        return NULL;
    }
    TextSink sink;
    text_sink_init(&sink);
    PyObject *data = Py_NewRef(args[1]);
    /* JSON text is rarely much longer than the wire form: one allocation, mostly */
    int rc = buf_reserve(&sink.b, PyBytes_GET_SIZE(data) * 2 + 64);
    if (rc == OK)
        rc = emit(&ctx, &sink.sink, (Table *)args[0], (const uint8_t *)PyBytes_AS_STRING(data),
                  PyBytes_GET_SIZE(data));
    Py_DECREF(data);
    PyObject *out = rc == OK ? wire(&sink.b) : NULL;
    buf_free(&sink.b);
    if (rc == OK && out == NULL) rc = ERR;
    return finish(ctx.st, rc, C_EMIT_TEXT, C_EMIT_TEXT_DECLINED, out);
}

static const char *const COUNT_NAMES[N_COUNTS] = {
    "parse", "parse_declined", "emit", "emit_declined", "emit_text", "emit_text_declined",
    "parse_text", "parse_text_declined",
};

static PyObject *native_stats(PyObject *self, PyObject *args) {
    State *st = PyModule_GetState(self);
    int reset = 0;
    if (!PyArg_ParseTuple(args, "|p", &reset)) return NULL;
    PyObject *out = PyDict_New();
    for (int i = 0; out != NULL && i < N_COUNTS; i++) {
        PyObject *count = PyLong_FromSsize_t(st->counts[i]);
        if (count == NULL || PyDict_SetItemString(out, COUNT_NAMES[i], count) < 0) Py_CLEAR(out);
        Py_XDECREF(count);
    }
    if (out != NULL && reset) memset(st->counts, 0, sizeof(st->counts));
    return out;
}

#define FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL
static PyMethodDef methods[] = {
    {"stats", native_stats, METH_VARARGS, "stats(reset=False) -> dict: conversions done and declined"},
    {"decode", FASTCALL(native_decode), "decode(table, value, ...) -> bytes or NotImplemented"},
    {"decode_text", FASTCALL(native_decode_text), "decode_text(table, text, ...) -> bytes or NotImplemented"},
    {"encode", FASTCALL(native_encode), "encode(table, data, ...) -> value or NotImplemented"},
    {"encode_text", FASTCALL(native_encode_text), "encode_text(table, data, ...) -> bytes or NotImplemented"},
    {NULL, NULL, 0, NULL},
};

/* --- the module ------------------------------------------------------------------------- */

#define STRINGS(X) X(s_type, "@type") X(s_value, "value") X(s_nan, "NaN") X(s_inf, "Infinity") \
    X(s_ninf, "-Infinity") X(s_fromstring, "FromString") X(s_serialize, "SerializeToString") \
    X(s_deterministic, "deterministic")

static const struct {
    const char *name;
    int value;
} CONSTANTS[] = {
    {"MAX_DEPTH", MAX_DEPTH}, {"F_REPEATED", F_REPEATED}, {"F_MAP", F_MAP},
    {"F_PACKED", F_PACKED}, {"F_PRESENCE", F_PRESENCE}, {"F_OUTPUT_ONLY", F_OUTPUT_ONLY},
    {"F_ENUM_CLOSED", F_ENUM_CLOSED}, {"F_NULL_ENUM", F_NULL_ENUM},
    {"TF_UNSUPPORTED", TF_UNSUPPORTED}, {"TF_HAS_MAPS", TF_HAS_MAPS},
    {"TF_HAS_REQUIRED", TF_HAS_REQUIRED}, {"W_ANY", W_ANY}, {"W_DURATION", W_DURATION},
    {"W_FIELD_MASK", W_FIELD_MASK}, {"W_LIST_VALUE", W_LIST_VALUE}, {"W_STRUCT", W_STRUCT},
    {"W_TIMESTAMP", W_TIMESTAMP}, {"W_VALUE", W_VALUE}, {"W_WRAPPER", W_WRAPPER},
};

static int module_exec(PyObject *m) {
    State *st = PyModule_GetState(m);
#define INTERN(field, text) if ((st->field = PyUnicode_InternFromString(text)) == NULL) return -1;
    STRINGS(INTERN)
    st->table_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &table_spec, NULL);
    if (st->table_type == NULL || PyModule_AddObjectRef(m, "Table", (PyObject *)st->table_type) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(CONSTANTS) / sizeof(CONSTANTS[0]); i++)
        if (PyModule_AddIntConstant(m, CONSTANTS[i].name, CONSTANTS[i].value) < 0) return -1;
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg) {
    State *st = PyModule_GetState(m);
    Py_VISIT(st->table_type);
    return 0;
}

static int module_clear(PyObject *m) {
    State *st = PyModule_GetState(m);
    Py_CLEAR(st->table_type);
#define CLEAR(field, text) Py_CLEAR(st->field);
    STRINGS(CLEAR)
    return 0;
}

static void module_free(void *m) { module_clear(m); }

static PyModuleDef_Slot slots[] = {{Py_mod_exec, module_exec}, {0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "The native core of the JSON codec (see v1op_pb/_codec/plan.py).", sizeof(State), methods,
    slots, module_traverse, module_clear, module_free,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModuleDef_Init(&module); }
