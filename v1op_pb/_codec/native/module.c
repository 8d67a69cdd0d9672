/* The module v1op_pb._codec._native: the Table type (one compact table per message type,
 * filled from what plan.py computes) and the two conversions.
 *
 *   decode(table, value, ignore_unknown, resolver, by_url, tables, repack_maps) -> bytes,
 *       or NotImplemented (declined)
 *   encode(table, data, omit_output_only, emit_unpopulated, resolver, by_url, tables) ->
 *       JSON value, or NotImplemented (declined)
 *   encode_text(same arguments) -> bytes: orjson.dumps of what encode returns, written
 *       straight from the wire (emit_text.c), or NotImplemented (declined)
 *
 * resolver(type_url) -> Table or None resolves an Any's type through the codec's registry;
 * by_url (the registry's URL -> class cache) and tables (class -> Table) answer first, so
 * that only a miss calls back into Python.
 * All state lives in the arguments and the C stack: conversions are re-entrant and may run
 * in several threads at once.
 */
#include "native.h"
#include <string.h>

Consts C;

/* Conversions done and declined, for native_stats: updated with the GIL held. */
static Py_ssize_t counts[8]; /* parse, parse_declined, emit, emit_declined, emit_text,
                                emit_text_declined, parse_text, parse_text_declined (a text
                                decode counts in parse too) */

static void table_clear_fields(Table *t) {
    if (t->fields) {
        for (int i = 0; i < t->nfields; i++) {
            Field *f = &t->fields[i];
            Py_CLEAR(f->json_key);
            Py_CLEAR(f->enum_names);
            Py_CLEAR(f->enum_numbers);
            Py_CLEAR(f->unpopulated);
        }
    }
    PyMem_Free(t->fields);
    PyMem_Free(t->decl);
    PyMem_Free(t->by_number);
    t->fields = NULL;
    t->decl = NULL;
    t->by_number = NULL;
    t->nfields = 0;
}

static int table_traverse(Table *t, visitproc visit, void *arg) {
    Py_VISIT(t->keys);
    Py_VISIT(t->cls);
    Py_VISIT(t->refs);
    return 0;
}

static int table_clear(Table *t) {
    t->ready = 0;
    table_clear_fields(t);
    Py_CLEAR(t->keys);
    Py_CLEAR(t->cls);
    Py_CLEAR(t->refs);
    Py_CLEAR(t->name);
    return 0;
}

static void table_dealloc(Table *t) {
    PyObject_GC_UnTrack(t);
    table_clear(t);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyObject *table_repr(Table *t) {
    return PyUnicode_FromFormat("<native table of %S>", t->name ? t->name : Py_None);
}

static int field_from_tuple(Field *f, PyObject *spec, PyObject *refs) {
    PyObject *json_key, *enum_names, *enum_numbers, *sub, *unpopulated;
    unsigned int number;
    int type, flags, oneof, decl_index;
    if (!PyArg_ParseTuple(spec, "IiiiiUOOOO", &number, &type, &flags, &oneof, &decl_index,
                          &json_key, &enum_names, &enum_numbers, &sub, &unpopulated))
        return -1;
    f->number = number;
    f->type = type;
    f->flags = flags;
    f->oneof = oneof;
    f->decl_index = decl_index;
    f->json_key = Py_NewRef(json_key);
    if (enum_names != Py_None) {
        if (!PyDict_CheckExact(enum_names) || !PyDict_CheckExact(enum_numbers)) {
            PyErr_SetString(PyExc_TypeError, "enum tables must be dicts");
            return -1;
        }
        f->enum_names = Py_NewRef(enum_names);
        f->enum_numbers = Py_NewRef(enum_numbers);
    } else if (type == T_ENUM) {
        PyErr_SetString(PyExc_TypeError, "an enum field needs its tables");
        return -1;
    }
    if (sub != Py_None) {
        if (!PyObject_TypeCheck(sub, &TableType)) {
            PyErr_SetString(PyExc_TypeError, "sub must be a Table");
            return -1;
        }
        if (PyList_Append(refs, sub) < 0) return -1;
        f->sub = (Table *)sub; /* kept alive by refs */
    } else if (type == T_MESSAGE || (flags & F_MAP)) {
        PyErr_SetString(PyExc_TypeError, "a message field needs its table");
        return -1;
    }
    if (unpopulated != Py_None) {
        if (!PyTuple_Check(unpopulated) || PyTuple_GET_SIZE(unpopulated) != 1) {
            PyErr_SetString(PyExc_TypeError, "unpopulated must be a 1-tuple or None");
            return -1;
        }
        f->unpopulated = Py_NewRef(PyTuple_GET_ITEM(unpopulated, 0));
    }
    return 0;
}

/* Table.init(name, wkt, flags, fields, keys, noneofs, cls): fields sorted by number. */
static PyObject *table_init(Table *t, PyObject *args) {
    PyObject *name, *fields, *keys, *cls;
    int wkt, flags, noneofs;
    if (!PyArg_ParseTuple(args, "UiiO!O!iO", &name, &wkt, &flags, &PyTuple_Type, &fields,
                          &PyDict_Type, &keys, &noneofs, &cls))
        return NULL;
    if (t->ready || t->fields) {
        PyErr_SetString(PyExc_RuntimeError, "table already initialised");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(fields);
    if (n > 30000 || noneofs > 64) flags |= TF_UNSUPPORTED;
    PyObject *refs = PyList_New(0);
    if (refs == NULL) return NULL;
    t->fields = PyMem_Calloc((size_t)n + 1, sizeof(Field));
    t->decl = PyMem_Calloc((size_t)n + 1, sizeof(int));
    if (t->fields == NULL || t->decl == NULL) {
        Py_DECREF(refs);
        table_clear_fields(t);
        return PyErr_NoMemory();
    }
    t->nfields = (int)n;
    uint32_t max_number = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Field *f = &t->fields[i];
        if (field_from_tuple(f, PyTuple_GET_ITEM(fields, i), refs) < 0) goto fail;
        if (i > 0 && f->number <= t->fields[i - 1].number) {
            PyErr_SetString(PyExc_ValueError, "fields must be sorted by number");
            goto fail;
        }
        if (f->decl_index < 0 || f->decl_index >= n || f->oneof >= noneofs) {
            PyErr_SetString(PyExc_ValueError, "bad field index");
            goto fail;
        }
        t->decl[f->decl_index] = (int)i;
        if (f->number > max_number) max_number = f->number;
        if (f->type == T_GROUP) flags |= TF_UNSUPPORTED;
    }
    t->dense = max_number < 1024 ? max_number + 1 : 1024;
    t->by_number = PyMem_Malloc(sizeof(int16_t) * t->dense);
    if (t->by_number == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (uint32_t k = 0; k < t->dense; k++) t->by_number[k] = -1;
    for (Py_ssize_t i = 0; i < n; i++)
        if (t->fields[i].number < t->dense) t->by_number[t->fields[i].number] = (int16_t)i;
    /* keys must map to valid indexes: the core indexes fields with them unchecked */
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(keys, &pos, &k, &v)) {
        Py_ssize_t index = PyLong_Check(v) ? PyLong_AsSsize_t(v) : -1;
        if (!PyUnicode_CheckExact(k) || index < 0 || index >= n) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad key table");
            goto fail;
        }
    }
    t->name = Py_NewRef(name);
    t->wkt = wkt;
    t->flags = flags;
    t->noneofs = noneofs;
    t->keys = PyDict_Copy(keys);
    if (t->keys == NULL) goto fail;
    /* whether a field's JSON name names another field (the text path then asks keys) */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *index = PyDict_GetItemWithError(t->keys, t->fields[i].json_key);
        if (index == NULL && PyErr_Occurred()) goto fail;
        if (index == NULL || PyLong_AsSsize_t(index) != i) t->flags |= TF_KEY_CLASH;
    }
    t->cls = Py_NewRef(cls);
    t->refs = refs;
    t->ready = 1;
    Py_RETURN_NONE;
fail:
    Py_DECREF(refs);
    table_clear_fields(t);
    return NULL;
}

static PyObject *table_get_flags(Table *t, void *closure) { return PyLong_FromLong(t->flags); }

static PyMethodDef table_methods[] = {
    {"init", (PyCFunction)table_init, METH_VARARGS, "Fill the table (once)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef table_getset[] = {
    {"flags", (getter)table_get_flags, NULL, "TF_* flags", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "v1op_pb._codec._native.Table",
    .tp_basicsize = sizeof(Table),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The compact table the native codec reads for one message type.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)table_dealloc,
    .tp_traverse = (traverseproc)table_traverse,
    .tp_clear = (inquiry)table_clear,
    .tp_repr = (reprfunc)table_repr,
    .tp_methods = table_methods,
    .tp_getset = table_getset,
};

/* The registry's URL cache and the tables of its classes, when both are plain dicts. */
static int registry_cache(PyObject *by_url, PyObject *tables, Ctx *ctx) {
    if (PyDict_CheckExact(by_url) && PyDict_CheckExact(tables)) {
        ctx->by_url = by_url;
        ctx->tables = tables;
    }
    return 0;
}

/* Arguments are taken positionally, without a format string: these are called once per
 * conversion, and PyArg_ParseTuple's parsing would be a noticeable part of it. */
static int check_args(Py_ssize_t nargs, Py_ssize_t want, const char *name) {
    if (nargs == want) return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
    return -1;
}

static PyObject *native_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (check_args(nargs, 7, "decode") < 0) return NULL;
    if (!PyObject_TypeCheck(args[0], &TableType)) {
        PyErr_SetString(PyExc_TypeError, "decode() needs a Table");
        return NULL;
    }
    int ignore_unknown = PyObject_IsTrue(args[2]);
    int repack_maps = PyObject_IsTrue(args[6]);
    if (ignore_unknown < 0 || repack_maps < 0) return NULL;
    PyObject *value = args[1];
    Ctx ctx = {args[3], NULL, NULL, ignore_unknown, 0, 0, repack_maps};
    registry_cache(args[4], args[5], &ctx);
    Buf b = {0};
    Py_INCREF(value);
    int rc = parse_message(&ctx, &b, (Table *)args[0], value, 1, 0);
    Py_DECREF(value);
    PyObject *out = NULL;
    if (rc == OK) out = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    else if (rc == DECLINE) out = Py_NewRef(Py_NotImplemented);
    /* plan.py's probe of the runtime (no resolver) is not a conversion to count */
    if (rc != ERR && args[3] != Py_None) counts[rc == OK ? 0 : 1]++;
    buf_free(&b);
    return out;
}

static PyObject *native_decode_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (check_args(nargs, 7, "decode_text") < 0) return NULL;
    if (!PyObject_TypeCheck(args[0], &TableType)) {
        PyErr_SetString(PyExc_TypeError, "decode_text() needs a Table");
        return NULL;
    }
    int ignore_unknown = PyObject_IsTrue(args[2]);
    int repack_maps = PyObject_IsTrue(args[6]);
    if (ignore_unknown < 0 || repack_maps < 0) return NULL;
    PyObject *data = args[1];
    const char *s = NULL;
    Py_ssize_t n = 0;
    if (PyUnicode_CheckExact(data)) {
        s = PyUnicode_AsUTF8AndSize(data, &n);
        if (s == NULL) { /* lone surrogates: jsontext says what is wrong */
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return NULL;
            PyErr_Clear();
        }
    } else if (PyBytes_CheckExact(data)) {
        s = PyBytes_AS_STRING(data);
        n = PyBytes_GET_SIZE(data);
    }
    int rc = DECLINE;
    Buf b = {0};
    if (s != NULL) {
        Ctx ctx = {args[3], NULL, NULL, ignore_unknown, 0, 0, repack_maps};
        registry_cache(args[4], args[5], &ctx);
        Py_INCREF(data); /* its bytes are read while the registry's Python code may run */
        rc = parse_text(&ctx, &b, (Table *)args[0], s, n);
        Py_DECREF(data);
    }
    PyObject *out = NULL;
    if (rc == OK) out = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    else if (rc == DECLINE) out = Py_NewRef(Py_NotImplemented);
    if (rc == OK) {
        counts[0]++;
        counts[6]++;
    } else if (rc == DECLINE) {
        counts[7]++;
    }
    buf_free(&b);
    return out;
}

/* The context of encode and encode_text, from their arguments (table, data,
 * omit_output_only, emit_unpopulated, resolver, by_url, tables); -1 with an exception. */
static int writing_ctx(PyObject *const *args, Py_ssize_t nargs, const char *name, Ctx *ctx) {
    if (check_args(nargs, 7, name) < 0) return -1;
    if (!PyObject_TypeCheck(args[0], &TableType) || !PyBytes_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "%s() needs a Table and bytes", name);
        return -1;
    }
    int omit_output_only = PyObject_IsTrue(args[2]);
    int emit_unpopulated = PyObject_IsTrue(args[3]);
    if (omit_output_only < 0 || emit_unpopulated < 0) return -1;
    *ctx = (Ctx){args[4], NULL, NULL, 0, omit_output_only, emit_unpopulated, 0};
    registry_cache(args[5], args[6], ctx);
    return 0;
}

static PyObject *native_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Ctx ctx;
    if (writing_ctx(args, nargs, "encode", &ctx) < 0) return NULL;
    PyObject *data = Py_NewRef(args[1]);
    PyObject *out = NULL;
    int rc = emit_message(&ctx, (Table *)args[0], (const uint8_t *)PyBytes_AS_STRING(data),
                          PyBytes_GET_SIZE(data), 1, &out, NULL);
    Py_DECREF(data);
    if (rc != ERR) counts[rc == OK ? 2 : 3]++;
    if (rc == OK) return out;
    Py_XDECREF(out);
    if (rc == DECLINE) return Py_NewRef(Py_NotImplemented);
    return NULL;
}

static PyObject *native_encode_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Ctx ctx;
    if (writing_ctx(args, nargs, "encode_text", &ctx) < 0) return NULL;
    PyObject *data = Py_NewRef(args[1]);
    Buf b = {0};
    /* JSON text is rarely much longer than the wire form: one allocation, mostly */
    int rc = buf_reserve(&b, PyBytes_GET_SIZE(data) * 2 + 64);
    if (rc == OK)
        rc = text_message(&ctx, &b, (Table *)args[0], (const uint8_t *)PyBytes_AS_STRING(data),
                          PyBytes_GET_SIZE(data), 1, NULL);
    Py_DECREF(data);
    PyObject *out = NULL;
    if (rc == OK) out = PyBytes_FromStringAndSize(b.data, b.len);
    else if (rc == DECLINE) out = Py_NewRef(Py_NotImplemented);
    if (rc != ERR) counts[rc == OK ? 4 : 5]++;
    buf_free(&b);
    return out;
}

PyObject *native_same_reading(PyObject *self, PyObject *args);

static PyObject *native_stats(PyObject *self, PyObject *args) {
    int reset = 0;
    if (!PyArg_ParseTuple(args, "|p", &reset)) return NULL;
    PyObject *out = Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n}", "parse", counts[0],
                                  "parse_declined", counts[1], "emit", counts[2],
                                  "emit_declined", counts[3], "emit_text", counts[4],
                                  "emit_text_declined", counts[5], "parse_text", counts[6],
                                  "parse_text_declined", counts[7]);
    if (out != NULL && reset) memset(counts, 0, sizeof(counts));
    return out;
}

static PyMethodDef methods[] = {
    {"stats", native_stats, METH_VARARGS,
     "stats(reset=False) -> dict: conversions done and declined by the core"},
    {"same_reading", native_same_reading, METH_VARARGS,
     "same_reading(text, value) -> bool: orjson's value surely equals json.loads's"},
    {"decode", (PyCFunction)(void (*)(void))native_decode, METH_FASTCALL,
     "decode(table, value, ignore_unknown, resolver, by_url, tables, repack_maps) -> bytes "
     "or NotImplemented"},
    {"decode_text", (PyCFunction)(void (*)(void))native_decode_text, METH_FASTCALL,
     "decode_text(table, data, ignore_unknown, resolver, by_url, tables, repack_maps) -> "
     "bytes or NotImplemented: decode of jsontext.loads(data), from the text in one pass"},
    {"encode", (PyCFunction)(void (*)(void))native_encode, METH_FASTCALL,
     "encode(table, data, omit_output_only, emit_unpopulated, resolver, by_url, tables) -> "
     "value or NotImplemented"},
    {"encode_text", (PyCFunction)(void (*)(void))native_encode_text, METH_FASTCALL,
     "encode_text(table, data, omit_output_only, emit_unpopulated, resolver, by_url, tables) "
     "-> compact JSON text (bytes, orjson.dumps of encode's value) or NotImplemented"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "The native core of the JSON codec (see v1op_pb/_codec/plan.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

static int intern(PyObject **slot, const char *text) {
    *slot = PyUnicode_InternFromString(text);
    return *slot ? 0 : -1;
}

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&TableType) < 0) return NULL;
    if (intern(&C.s_type, "@type") < 0 || intern(&C.s_value, "value") < 0 ||
        intern(&C.s_fromstring, "FromString") < 0 ||
        intern(&C.s_serialize, "SerializeToString") < 0 || intern(&C.s_nan, "NaN") < 0 ||
        intern(&C.s_inf, "Infinity") < 0 || intern(&C.s_ninf, "-Infinity") < 0 ||
        intern(&C.s_number_value, "numberValue") < 0 ||
        intern(&C.s_deterministic, "deterministic") < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Table", (PyObject *)&TableType) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DEPTH", MAX_DEPTH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
