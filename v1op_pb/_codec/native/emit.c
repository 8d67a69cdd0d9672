/* Binary wire form -> JSON value, driven by a Table.
 *
 * Reads what SerializeToString wrote and builds the same dicts, lists and scalars the Python
 * encoder builds from the message (encode.py): fields in number order (declaration order
 * with emit_unpopulated), map entries sorted by key (maps.c). A field number the table does
 * not know is an unknown field or an extension: the core declines and the Python codec
 * reports it.
 */
#include "native.h"
#include <math.h>
#include <string.h>

static PyObject *int64_text(int64_t v, int is_unsigned, uint64_t u) {
    char text[24];
    int n = is_unsigned ? fmt_digits(text, u, 0) : fmt_signed(text, v);
    PyObject *out = PyUnicode_New(n, 127);
    if (out != NULL) memcpy(PyUnicode_DATA(out), text, (size_t)n);
    return out;
}

static PyObject *double_json(double d) {
    if (isnan(d)) return Py_NewRef(C.s_nan);
    if (isinf(d)) return Py_NewRef(d > 0 ? C.s_inf : C.s_ninf);
    return PyFloat_FromDouble(d);
}

static PyObject *float_json(float f) {
    double value = (double)f;
    if (isnan(value) || isinf(value)) return double_json(value);
    if (float_shortest(f, &value) != OK) return NULL;
    return PyFloat_FromDouble(value);
}

int field_wire_type(int type) {
    switch (type) {
    case T_DOUBLE: case T_FIXED64: case T_SFIXED64: return 1;
    case T_FLOAT: case T_FIXED32: case T_SFIXED32: return 5;
    case T_STRING: case T_BYTES: case T_MESSAGE: return 2;
    default: return 0;
    }
}

/* One scalar value read from r (wire_type already checked); *out a new reference.
 * Returns OK (*is_default set), DECLINE or ERR. */
static int read_scalar(const Field *f, Rd *r, PyObject **out, int *is_default) {
    uint64_t v = 0;
    switch (field_wire_type(f->type)) {
    case 0:
        if (rd_varint(r, &v) != OK) return DECLINE;
        break;
    case 1:
        if (r->end - r->p < 8) return DECLINE;
        for (int i = 7; i >= 0; i--) v = (v << 8) | r->p[i];
        r->p += 8;
        break;
    case 5:
        if (r->end - r->p < 4) return DECLINE;
        for (int i = 3; i >= 0; i--) v = (v << 8) | r->p[i];
        r->p += 4;
        break;
    default: {
        if (rd_varint(r, &v) != OK || v > (uint64_t)(r->end - r->p)) return DECLINE;
        const uint8_t *p = r->p;
        r->p += v;
        *is_default = v == 0;
        if (f->type == T_STRING) {
            *out = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)v, NULL);
            if (*out == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return ERR;
                PyErr_Clear();
                return DECLINE; /* the Python codec reports text that is not UTF-8 */
            }
            return OK;
        }
        *out = base64_encode(p, (Py_ssize_t)v);
        return *out ? OK : ERR;
    }
    }
    *is_default = v == 0;
    switch (f->type) {
    case T_INT32: case T_SFIXED32:
        *out = PyLong_FromLong((int32_t)(uint32_t)v);
        *is_default = (uint32_t)v == 0;
        break;
    case T_SINT32: {
        uint32_t z = (uint32_t)v;
        *out = PyLong_FromLong((int32_t)((z >> 1) ^ (0u - (z & 1))));
        *is_default = z == 0;
        break;
    }
    case T_UINT32: case T_FIXED32:
        *out = PyLong_FromUnsignedLong((uint32_t)v);
        *is_default = (uint32_t)v == 0;
        break;
    case T_INT64: case T_SFIXED64:
        *out = int64_text((int64_t)v, 0, 0);
        break;
    case T_SINT64:
        *out = int64_text((int64_t)((v >> 1) ^ (0 - (v & 1))), 0, 0);
        break;
    case T_UINT64: case T_FIXED64:
        *out = int64_text(0, 1, v);
        break;
    case T_BOOL:
        *out = Py_NewRef(v ? Py_True : Py_False);
        break;
    case T_DOUBLE: {
        double d;
        memcpy(&d, &v, 8);
        *out = double_json(d);
        break;
    }
    case T_FLOAT: {
        uint32_t b = (uint32_t)v;
        float x;
        memcpy(&x, &b, 4);
        *out = float_json(x);
        break;
    }
    case T_ENUM: {
        int32_t number = (int32_t)(uint32_t)v;
        *is_default = number == 0;
        if (f->flags & F_NULL_ENUM) {
            *out = Py_NewRef(Py_None);
            break;
        }
        PyObject *key = PyLong_FromLong(number);
        if (key == NULL) return ERR;
        PyObject *name = PyDict_GetItemWithError(f->enum_names, key);
        if (name != NULL) {
            Py_DECREF(key);
            *out = Py_NewRef(name);
        } else if (PyErr_Occurred()) {
            Py_DECREF(key);
            return ERR;
        } else if (f->flags & F_ENUM_CLOSED) {
            Py_DECREF(key);
            return DECLINE;
        } else {
            *out = key;
        }
        break;
    }
    default:
        return DECLINE;
    }
    return *out ? OK : ERR;
}

int emit_scalar(const Field *f, int wire_type, Rd *r, PyObject **out) {
    int is_default;
    if (wire_type != field_wire_type(f->type)) return DECLINE;
    return read_scalar(f, r, out, &is_default);
}

static int find_field(const Table *t, uint32_t number) {
    if (number < t->dense) return t->by_number[number];
    int lo = 0, hi = t->nfields - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->fields[mid].number == number) return mid;
        if (t->fields[mid].number < number) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* Skip a length-delimited record, giving its bytes. */
static int read_record(Rd *r, const uint8_t **p, Py_ssize_t *n) {
    uint64_t len;
    if (rd_varint(r, &len) != OK || len > (uint64_t)(r->end - r->p)) return DECLINE;
    *p = r->p;
    *n = (Py_ssize_t)len;
    r->p += len;
    return OK;
}

static int append_new(PyObject **slot, PyObject *item) {
    if (*slot == NULL) {
        *slot = PyList_New(0);
        if (*slot == NULL) {
            Py_DECREF(item);
            return ERR;
        }
    }
    int rc = PyList_Append(*slot, item);
    Py_DECREF(item);
    return rc < 0 ? ERR : OK;
}

/* The dict of a map from its entries (maps.c), in key order. */
static int map_from_entries(Ctx *ctx, const Field *f, MapList *m, int depth, PyObject **out) {
    const Table *et = f->sub;
    const Field *kf = &et->fields[0], *vf = &et->fields[1];
    int rc = map_list_sort(m, kf->type);
    if (rc != OK) return rc;
    PyObject *dict = PyDict_New();
    if (dict == NULL) return ERR;
    for (Py_ssize_t i = 0; i < m->n && rc == OK; i++) {
        const MapEntry *e = &m->items[i];
        PyObject *key, *value = NULL;
        if (kf->type == T_STRING) {
            key = PyUnicode_DecodeUTF8((const char *)e->key, e->key_n, NULL);
            if (key == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    rc = ERR;
                    break;
                }
                PyErr_Clear();
                rc = DECLINE; /* the Python codec reports text that is not UTF-8 */
                break;
            }
        } else {
            char text[24];
            int len = map_key_digits(e, kf->type, text);
            key = PyUnicode_FromStringAndSize(text, len);
            if (key == NULL) {
                rc = ERR;
                break;
            }
        }
        if (vf->type == T_MESSAGE) {
            const uint8_t *q = (const uint8_t *)"";
            Py_ssize_t len = 0;
            if (e->has_value) {
                Rd r = {e->value, e->value_end};
                rc = read_record(&r, &q, &len);
            }
            if (rc == OK) rc = emit_message(ctx, vf->sub, q, len, depth + 2, &value, NULL);
        } else {
            Rd r = {e->value, e->value_end};
            rc = emit_scalar(vf, field_wire_type(vf->type), &r, &value);
        }
        if (rc == OK && PyDict_SetItem(dict, key, value) < 0) rc = ERR;
        Py_DECREF(key);
        Py_XDECREF(value);
    }
    if (rc != OK) {
        Py_DECREF(dict);
        return rc;
    }
    *out = dict;
    return OK;
}

static PyObject *fresh_unpopulated(PyObject *value) {
    if (PyList_CheckExact(value)) return PyList_New(0);
    if (PyDict_CheckExact(value)) return PyDict_New();
    return Py_NewRef(value);
}

#define SMALL 32

int emit_message(Ctx *ctx, Table *t, const uint8_t *p, Py_ssize_t n, int depth,
                 PyObject **out, PyObject *into) {
    if (depth > MAX_DEPTH || (t->flags & TF_UNSUPPORTED) || !t->ready) return DECLINE;
    if (t->wkt != W_NONE && into == NULL) return emit_wkt(ctx, t, p, n, depth, out);
    int nf = t->nfields;
    PyObject *small[SMALL];
    int small_oneof[SMALL];
    PyObject **slots = small;
    int *oneof_member = small_oneof;
    if (nf > SMALL || t->noneofs > SMALL) {
        slots = PyMem_Calloc((size_t)nf + 1, sizeof(PyObject *));
        oneof_member = PyMem_Calloc((size_t)t->noneofs + 1, sizeof(int));
        if (slots == NULL || oneof_member == NULL) {
            PyMem_Free(slots);
            PyMem_Free(oneof_member);
            PyErr_NoMemory();
            return ERR;
        }
    } else {
        memset(small, 0, sizeof(small));
    }
    for (int i = 0; i < t->noneofs; i++) oneof_member[i] = -1;
    MapList *maps = NULL; /* per field, made when the first map entry is read */
    Rd r = {p, p + n};
    int rc = OK;
    while (r.p < r.end && rc == OK) {
        uint64_t tag;
        if (rd_varint(&r, &tag) != OK || (tag >> 35)) {
            rc = DECLINE;
            break;
        }
        int wt = (int)(tag & 7);
        int i = find_field(t, (uint32_t)(tag >> 3));
        if (i < 0) {
            rc = DECLINE; /* an unknown field or an extension */
            break;
        }
        const Field *f = &t->fields[i];
        if (f->oneof >= 0) {
            int was = oneof_member[f->oneof];
            if (was >= 0 && was != i) Py_CLEAR(slots[was]); /* the last member read wins */
            oneof_member[f->oneof] = i;
        }
        if (f->flags & F_MAP) {
            const uint8_t *q;
            Py_ssize_t m;
            if (wt != 2 || read_record(&r, &q, &m) != OK) {
                rc = DECLINE;
                break;
            }
            if (maps == NULL && (maps = PyMem_Calloc((size_t)nf, sizeof(MapList))) == NULL) {
                PyErr_NoMemory();
                rc = ERR;
                break;
            }
            rc = map_list_add(&maps[i], f->sub, q, m);
        } else if (f->type == T_MESSAGE) {
            const uint8_t *q;
            Py_ssize_t m;
            PyObject *item = NULL;
            if (wt != 2 || read_record(&r, &q, &m) != OK) {
                rc = DECLINE;
                break;
            }
            if (!(f->flags & F_REPEATED) && slots[i] != NULL) {
                rc = DECLINE; /* a message in two parts would merge: leave it to Python */
                break;
            }
            rc = emit_message(ctx, f->sub, q, m, depth + 1, &item, NULL);
            if (rc != OK) break;
            if (f->flags & F_REPEATED) rc = append_new(&slots[i], item);
            else slots[i] = item;
        } else if (f->flags & F_REPEATED) {
            if (wt == 2 && field_wire_type(f->type) != 2) { /* packed */
                const uint8_t *q;
                Py_ssize_t m;
                if (read_record(&r, &q, &m) != OK) {
                    rc = DECLINE;
                    break;
                }
                if (slots[i] == NULL && (slots[i] = PyList_New(0)) == NULL) {
                    rc = ERR;
                    break;
                }
                Rd packed = {q, q + m};
                while (packed.p < packed.end && rc == OK) {
                    PyObject *item = NULL;
                    rc = emit_scalar(f, field_wire_type(f->type), &packed, &item);
                    if (rc == OK) rc = append_new(&slots[i], item);
                }
            } else {
                PyObject *item = NULL;
                rc = emit_scalar(f, wt, &r, &item);
                if (rc == OK) rc = append_new(&slots[i], item);
            }
        } else {
            PyObject *item = NULL;
            int is_default = 0;
            if (wt != field_wire_type(f->type)) {
                rc = DECLINE;
                break;
            }
            rc = read_scalar(f, &r, &item, &is_default);
            if (rc != OK) break;
            if (is_default && !(f->flags & F_PRESENCE) && !ctx->emit_unpopulated) {
                Py_DECREF(item); /* a default read last means the field is unset */
                Py_CLEAR(slots[i]);
            } else {
                Py_XSETREF(slots[i], item);
            }
        }
    }
    PyObject *dict = NULL;
    if (rc == OK) {
        dict = into ? Py_NewRef(into) : PyDict_New();
        if (dict == NULL) rc = ERR;
    }
    for (int k = 0; k < nf && rc == OK; k++) {
        int i = ctx->emit_unpopulated ? t->decl[k] : k;
        const Field *f = &t->fields[i];
        PyObject *value = slots[i];
        PyObject *made = NULL;
        if (maps != NULL && maps[i].n) {
            /* built even when omitted: what is not valid must decline, as it does elsewhere */
            rc = map_from_entries(ctx, f, &maps[i], depth, &made);
            if (rc != OK) break;
            value = made;
        }
        if (ctx->omit_output_only && (f->flags & F_OUTPUT_ONLY)) {
            Py_XDECREF(made);
            continue;
        }
        if (value == NULL) {
            if (!ctx->emit_unpopulated || f->unpopulated == NULL) continue;
            value = made = fresh_unpopulated(f->unpopulated);
            if (made == NULL) {
                rc = ERR;
                break;
            }
        } else if (PyList_CheckExact(value) && PyList_GET_SIZE(value) == 0 &&
                   (f->flags & F_REPEATED) && !ctx->emit_unpopulated) {
            continue;
        }
        if (PyDict_SetItem(dict, f->json_key, value) < 0) rc = ERR;
        Py_XDECREF(made);
    }
    for (int i = 0; i < nf; i++) Py_XDECREF(slots[i]);
    if (maps != NULL) {
        for (int i = 0; i < nf; i++) map_list_free(&maps[i]);
        PyMem_Free(maps);
    }
    if (slots != small) {
        PyMem_Free(slots);
        PyMem_Free(oneof_member);
    }
    if (rc != OK) {
        Py_XDECREF(dict);
        return rc;
    }
    *out = dict;
    return OK;
}
