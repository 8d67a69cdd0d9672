/* The checks jsontext.loads makes on orjson's reading of a text (jsontext._may_differ), in
 * C: whether the text has a run of 19 digits or the escape \u003, and how many colons the
 * text and orjson's value each hold (the value as orjson would write it back: one colon per
 * object member, plus those inside keys and strings). Equal counts mean no duplicate key was
 * dropped. Any doubt answers -1, and the Python check decides.
 */
#define _GNU_SOURCE /* memmem */
#include "native.h"
#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Whether the text has a run of 19 ASCII digits. Such a run covers a multiple of 10, so only
 * the digits there are looked at, and the run around each is measured. */
static int has_long_digit_run(const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i += 10) {
        if (!is_digit(s[i])) continue;
        Py_ssize_t start = i, end = i + 1;
        while (start > 0 && is_digit(s[start - 1])) start--;
        while (end < n && is_digit(s[end])) end++;
        if (end - start >= 19) return 1;
        i = end - end % 10; /* the next multiple of 10 past the run, less 10 */
    }
    return 0;
}

/* Colons in the text, or -1 when it has a run of 19 ASCII digits or "\u003". */
static Py_ssize_t text_colons(const char *s, Py_ssize_t n) {
    if (has_long_digit_run(s, n)) return -1;
    if (n >= 5 && memmem(s, (size_t)n, "\\u003", 5) != NULL) return -1;
    Py_ssize_t colons = 0;
    for (Py_ssize_t i = 0; i < n; i++) colons += s[i] == ':'; /* vectorised by the compiler */
    return colons;
}

static Py_ssize_t str_colons(PyObject *v) {
    Py_ssize_t n;
    if (PyUnicode_IS_ASCII(v)) {
        const char *s = (const char *)PyUnicode_DATA(v);
        n = PyUnicode_GET_LENGTH(v);
        Py_ssize_t colons = 0;
        const char *p = s, *end = s + n;
        while ((p = memchr(p, ':', (size_t)(end - p))) != NULL) {
            colons++;
            p++;
        }
        return colons;
    }
    Py_ssize_t colons = 0;
    n = PyUnicode_GET_LENGTH(v);
    int kind = PyUnicode_KIND(v);
    const void *data = PyUnicode_DATA(v);
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyUnicode_READ(kind, data, i) == ':') colons++;
    return colons;
}

/* Colons orjson.dumps(value) would write, or -1 (deep nesting, unexpected types). */
static Py_ssize_t value_colons(PyObject *v, int depth) {
    if (PyUnicode_CheckExact(v)) return str_colons(v);
    if (PyDict_CheckExact(v)) {
        if (depth > 200) return -1;
        Py_ssize_t total = PyDict_GET_SIZE(v), pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(v, &pos, &key, &item)) {
            if (!PyUnicode_CheckExact(key)) return -1;
            Py_ssize_t k = str_colons(key), c = value_colons(item, depth + 1);
            if (c < 0) return -1;
            total += k + c;
        }
        return total;
    }
    if (PyList_CheckExact(v)) {
        if (depth > 200) return -1;
        Py_ssize_t total = 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            Py_ssize_t c = value_colons(PyList_GET_ITEM(v, i), depth + 1);
            if (c < 0) return -1;
            total += c;
        }
        return total;
    }
    if (PyLong_CheckExact(v) || PyFloat_CheckExact(v) || PyBool_Check(v) || v == Py_None)
        return 0;
    return -1;
}

/* same_reading(data, value) -> bool: True when orjson's value of the text data is surely
 * what json.loads reads (no big integer, no dropped duplicate key). */
PyObject *native_same_reading(PyObject *self, PyObject *args) {
    PyObject *data, *value;
    if (!PyArg_ParseTuple(args, "OO", &data, &value)) return NULL;
    const char *s;
    Py_ssize_t n;
    if (PyBytes_CheckExact(data)) {
        s = PyBytes_AS_STRING(data);
        n = PyBytes_GET_SIZE(data);
    } else if (PyUnicode_CheckExact(data)) {
        s = PyUnicode_AsUTF8AndSize(data, &n);
        if (s == NULL) {
            PyErr_Clear();
            Py_RETURN_FALSE;
        }
    } else {
        Py_RETURN_FALSE;
    }
    Py_ssize_t colons = text_colons(s, n);
    if (colons < 0) Py_RETURN_FALSE;
    Py_ssize_t written = value_colons(value, 0);
    return PyBool_FromLong(written >= 0 && written == colons);
}
