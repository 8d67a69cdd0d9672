/* The well-known types whose JSON form is not an object of their fields (wkt.py's units),
 * both ways: Timestamp and Duration text, FieldMask, Struct/Value/ListValue, the wrappers
 * and Any (its type URL resolved through the registry in use, by a call back into Python).
 */
#include "native.h"
#include <math.h>
#include <string.h>

#define MIN_SECONDS (-62135596800LL)
#define MAX_SECONDS 253402300799LL
#define MAX_DURATION_SECONDS 315576000000LL

/* Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static const char *ascii_text(PyObject *v, Py_ssize_t *n) {
    if (!PyUnicode_CheckExact(v) || !PyUnicode_IS_ASCII(v)) return NULL;
    *n = PyUnicode_GET_LENGTH(v);
    return (const char *)PyUnicode_DATA(v);
}

static int write_int_field(Buf *b, uint32_t number, int64_t v) {
    if (v == 0) return OK;
    if (buf_tag(b, number, 0) != OK) return ERR;
    return buf_varint(b, (uint64_t)v);
}

/* --- Timestamp ------------------------------------------------------------------------ */

static int parse_timestamp(Buf *b, PyObject *v) {
    Py_ssize_t n;
    const char *s = ascii_text(v, &n);
    if (s == NULL) return DECLINE;
    return parse_timestamp_text(b, s, n);
}

/* s: ASCII text (JSON's value or the text reader's string). */
int parse_timestamp_text(Buf *b, const char *s, Py_ssize_t n) {
    if (n < 20) return DECLINE;
    int year, month, day, hour, minute, second;
    if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &month) || s[7] != '-' ||
        !digits(s + 8, 2, &day) || s[10] != 'T' || !digits(s + 11, 2, &hour) ||
        s[13] != ':' || !digits(s + 14, 2, &minute) || s[16] != ':' ||
        !digits(s + 17, 2, &second))
        return DECLINE;
    Py_ssize_t i = 19;
    int64_t nanos = 0;
    if (s[i] == '.') {
        Py_ssize_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') nanos = nanos * 10 + (s[i++] - '0');
        Py_ssize_t count = i - start;
        if (count < 1 || count > 9) return DECLINE;
        for (Py_ssize_t k = count; k < 9; k++) nanos *= 10;
    }
    int64_t offset = 0;
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (n - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return DECLINE;
        offset = (int64_t)oh * 3600 + om * 60;
        if (s[i] == '-') offset = -offset;
        i += 6;
    } else {
        return DECLINE;
    }
    if (i != n) return DECLINE;
    static const unsigned char month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > month_days[month - 1])
        return DECLINE;
    if (month == 2 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return DECLINE;
    if (hour > 23 || minute > 59 || second > 59) return DECLINE;
    int64_t seconds = days_from_civil(year, (unsigned)month, (unsigned)day) * 86400 +
                      hour * 3600 + minute * 60 + second - offset;
    if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) return DECLINE;
    if (write_int_field(b, 1, seconds) != OK || write_int_field(b, 2, nanos) != OK) return ERR;
    return OK;
}

/* Seconds and nanos (fields 1 and 2, varints) of a Timestamp or Duration. */
static int read_seconds_nanos(const uint8_t *p, Py_ssize_t n, int64_t *seconds, int32_t *nanos) {
    Rd r = {p, p + n};
    *seconds = 0;
    *nanos = 0;
    while (r.p < r.end) {
        uint64_t tag, v;
        if (rd_varint(&r, &tag) != OK || (tag & 7) != 0 || rd_varint(&r, &v) != OK)
            return DECLINE;
        if (tag >> 3 == 1) *seconds = (int64_t)v;
        else if (tag >> 3 == 2) *nanos = (int32_t)(uint32_t)v;
        else return DECLINE;
    }
    return OK;
}

static void put2(char *o, int v) {
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
}

/* ".fff", ".ffffff" or ".fffffffff" (or nothing) for nanos, as json_format writes them. */
static int put_fraction(char *o, int32_t nanos) {
    int count;
    if (nanos == 0) return 0;
    if (nanos % 1000000 == 0) {
        nanos /= 1000000;
        count = 3;
    } else if (nanos % 1000 == 0) {
        nanos /= 1000;
        count = 6;
    } else {
        count = 9;
    }
    o[0] = '.';
    for (int k = count; k >= 1; k--) {
        o[k] = (char)('0' + nanos % 10);
        nanos /= 10;
    }
    return count + 1;
}

int timestamp_text(const uint8_t *p, Py_ssize_t n, char *text) {
    int64_t seconds;
    int32_t nanos;
    if (read_seconds_nanos(p, n, &seconds, &nanos) != OK) return -1;
    if (seconds < MIN_SECONDS || seconds > MAX_SECONDS || nanos < 0 || nanos > 999999999)
        return -1;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rest = seconds - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    text[0] = (char)('0' + y / 1000);
    text[1] = (char)('0' + y / 100 % 10);
    text[2] = (char)('0' + y / 10 % 10);
    text[3] = (char)('0' + y % 10);
    text[4] = '-';
    put2(text + 5, (int)m);
    text[7] = '-';
    put2(text + 8, (int)d);
    text[10] = 'T';
    put2(text + 11, (int)(rest / 3600));
    text[13] = ':';
    put2(text + 14, (int)(rest / 60 % 60));
    text[16] = ':';
    put2(text + 17, (int)(rest % 60));
    int len = 19 + put_fraction(text + 19, nanos);
    text[len++] = 'Z';
    return len;
}

static int emit_timestamp(const uint8_t *p, Py_ssize_t n, PyObject **out) {
    char text[WKT_TEXT_MAX];
    int len = timestamp_text(p, n, text);
    if (len < 0) return DECLINE;
    *out = PyUnicode_FromStringAndSize(text, len);
    return *out ? OK : ERR;
}

/* --- Duration ------------------------------------------------------------------------- */

static int parse_duration(Buf *b, PyObject *v) {
    Py_ssize_t n;
    const char *s = ascii_text(v, &n);
    if (s == NULL) return DECLINE;
    return parse_duration_text(b, s, n);
}

int parse_duration_text(Buf *b, const char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    int negative = 0;
    if (i < n && s[i] == '-') {
        negative = 1;
        i++;
    }
    Py_ssize_t start = i;
    int64_t seconds = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        seconds = seconds * 10 + (s[i++] - '0');
        if (seconds > MAX_DURATION_SECONDS) return DECLINE;
    }
    if (i == start) return DECLINE;
    int64_t nanos = 0;
    if (i < n && s[i] == '.') {
        start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') nanos = nanos * 10 + (s[i++] - '0');
        Py_ssize_t count = i - start;
        if (count < 1 || count > 9) return DECLINE;
        for (Py_ssize_t k = count; k < 9; k++) nanos *= 10;
    }
    if (i >= n || s[i] != 's' || i + 1 != n) return DECLINE;
    if (negative) {
        seconds = -seconds;
        nanos = -nanos;
    }
    if (write_int_field(b, 1, seconds) != OK || write_int_field(b, 2, nanos) != OK) return ERR;
    return OK;
}

int duration_text(const uint8_t *p, Py_ssize_t n, char *text) {
    int64_t seconds;
    int32_t nanos;
    if (read_seconds_nanos(p, n, &seconds, &nanos) != OK) return -1;
    if (seconds < -MAX_DURATION_SECONDS || seconds > MAX_DURATION_SECONDS ||
        nanos < -999999999 || nanos > 999999999 || (seconds > 0 && nanos < 0) ||
        (seconds < 0 && nanos > 0))
        return -1;
    int len = 0;
    if (seconds < 0 || nanos < 0) {
        text[len++] = '-';
        seconds = -seconds;
        nanos = -nanos;
    }
    len += snprintf(text + len, (size_t)(WKT_TEXT_MAX - len), "%lld", (long long)seconds);
    len += put_fraction(text + len, nanos);
    text[len++] = 's';
    return len;
}

static int emit_duration(const uint8_t *p, Py_ssize_t n, PyObject **out) {
    char text[WKT_TEXT_MAX];
    int len = duration_text(p, n, text);
    if (len < 0) return DECLINE;
    *out = PyUnicode_FromStringAndSize(text, len);
    return *out ? OK : ERR;
}

/* --- FieldMask ------------------------------------------------------------------------ */

static int parse_field_mask(Buf *b, PyObject *v) {
    Py_ssize_t n;
    const char *s = ascii_text(v, &n);
    if (s == NULL) return DECLINE;
    return parse_field_mask_text(b, s, n);
}

int parse_field_mask_text(Buf *b, const char *s, Py_ssize_t n) {
    if (n == 0) return OK;
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',') continue;
        /* one path, camelCase to snake_case: upper-case letters become "_" + lower */
        if (buf_tag(b, 1, 2) != OK) return ERR;
        Py_ssize_t mark = buf_open(b);
        for (Py_ssize_t k = start; k < i; k++) {
            char c = s[k];
            if (c == '_') return DECLINE;
            if (c >= 'A' && c <= 'Z') {
                char pair[2] = {'_', (char)(c - 'A' + 'a')};
                if (buf_raw(b, pair, 2) != OK) return ERR;
            } else if (buf_raw(b, &c, 1) != OK) {
                return ERR;
            }
        }
        if (buf_close(b, mark) != OK) return ERR;
        start = i + 1;
    }
    return OK;
}

int field_mask_text(const uint8_t *p, Py_ssize_t n, Buf *out) {
    Rd r = {p, p + n};
    Buf text = *out;
    int rc = OK, first = 1;
    while (r.p < r.end && rc == OK) {
        uint64_t tag, len;
        if (rd_varint(&r, &tag) != OK || tag != ((1 << 3) | 2) || rd_varint(&r, &len) != OK ||
            len > (uint64_t)(r.end - r.p) || len == 0) {
            rc = DECLINE; /* an empty path has no JSON form of its own: let Python say */
            break;
        }
        const uint8_t *s = r.p;
        r.p += len;
        if (!first && buf_raw(&text, ",", 1) != OK) {
            rc = ERR;
            break;
        }
        first = 0;
        int after_underscore = 0;
        for (uint64_t k = 0; k < len && rc == OK; k++) {
            uint8_t c = s[k];
            if (c >= 0x80 || c == ',' || (c >= 'A' && c <= 'Z')) {
                rc = DECLINE;
            } else if (after_underscore) {
                if (c < 'a' || c > 'z') {
                    rc = DECLINE;
                } else {
                    char up = (char)(c - 'a' + 'A');
                    rc = buf_raw(&text, &up, 1);
                    after_underscore = 0;
                }
            } else if (c == '_') {
                after_underscore = 1;
            } else {
                rc = buf_raw(&text, &c, 1);
            }
        }
        if (rc == OK && after_underscore) rc = DECLINE;
    }
    *out = text;
    return rc;
}

static int emit_field_mask(const uint8_t *p, Py_ssize_t n, PyObject **out) {
    Buf text = {0};
    int rc = field_mask_text(p, n, &text);
    if (rc == OK) {
        *out = PyUnicode_DecodeASCII(text.data ? text.data : "", text.len, NULL);
        if (*out == NULL) rc = ERR;
    }
    buf_free(&text);
    return rc;
}

/* --- Struct, Value, ListValue ------------------------------------------------------------ */

static int parse_value(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth);

static int parse_list_value(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth) {
    if (!PyList_CheckExact(v)) return DECLINE;
    Table *value_table = t->fields[0].sub;
    int rc = OK;
    Py_INCREF(v);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v) && rc == OK; i++) {
        if (depth + 1 > MAX_DEPTH) {
            rc = DECLINE;
            break;
        }
        PyObject *item = Py_NewRef(PyList_GET_ITEM(v, i));
        if (buf_tag(b, 1, 2) != OK) {
            rc = ERR;
        } else {
            Py_ssize_t start = buf_open(b);
            rc = parse_value(ctx, b, value_table, item, depth + 1);
            if (rc == OK) rc = buf_close(b, start);
        }
        Py_DECREF(item);
    }
    Py_DECREF(v);
    return rc;
}

/* Value: t is Value's table; fields by number: 1 null_value, 2 number_value,
 * 3 string_value, 4 bool_value, 5 struct_value, 6 list_value. */
static Table *value_sub(Table *t, uint32_t number) {
    for (int i = 0; i < t->nfields; i++)
        if (t->fields[i].number == number) return t->fields[i].sub;
    return NULL;
}

static int parse_value(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth) {
    if (depth > MAX_DEPTH) return DECLINE;
    if (v == Py_None) {
        if (buf_tag(b, 1, 0) != OK || buf_varint(b, 0) != OK) return ERR;
        return OK;
    }
    if (PyUnicode_CheckExact(v)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
            PyErr_Clear();
            return DECLINE;
        }
        if (buf_tag(b, 3, 2) != OK || buf_varint(b, (uint64_t)n) != OK || buf_raw(b, s, n) != OK)
            return ERR;
        return OK;
    }
    if (v == Py_True || v == Py_False) {
        if (buf_tag(b, 4, 0) != OK || buf_varint(b, v == Py_True) != OK) return ERR;
        return OK;
    }
    if (PyFloat_CheckExact(v) || PyLong_CheckExact(v)) {
        double d;
        if (PyFloat_CheckExact(v)) {
            d = PyFloat_AS_DOUBLE(v);
        } else {
            d = PyLong_AsDouble(v);
            if (d == -1.0 && PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return ERR;
                PyErr_Clear();
                return DECLINE;
            }
        }
        if (!isfinite(d)) return DECLINE; /* NaN too: the Python codec decides */
        uint64_t bits;
        memcpy(&bits, &d, 8);
        if (buf_tag(b, 2, 1) != OK || buf_fixed64(b, bits) != OK) return ERR;
        return OK;
    }
    int number;
    if (PyDict_CheckExact(v)) number = 5;
    else if (PyList_CheckExact(v)) number = 6;
    else return DECLINE;
    if (depth + 1 > MAX_DEPTH) return DECLINE;
    Table *sub = value_sub(t, (uint32_t)number);
    if (sub == NULL) return DECLINE;
    if (buf_tag(b, (uint32_t)number, 2) != OK) return ERR;
    Py_ssize_t start = buf_open(b);
    int rc = number == 5 ? parse_message(ctx, b, sub, v, depth + 1, 0)
                         : parse_list_value(ctx, b, sub, v, depth + 1);
    if (rc != OK) return rc;
    return buf_close(b, start);
}

/* Struct's entries, sorted by key, each a Value at depth + 2. */
static int parse_struct_fields(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth);

/* --- Any --------------------------------------------------------------------------------- */

Table *resolve_type(Ctx *ctx, PyObject *url, int *outcome) {
    PyObject *found = NULL;
    if (ctx->by_url != NULL) {
        /* What wkt.resolve_type looks at first: the registry's own cache of URLs. A URL
         * there whose class has a table needs no call into Python. */
        PyObject *cls = PyDict_GetItemWithError(ctx->by_url, url);
        if (cls != NULL) found = PyDict_GetItemWithError(ctx->tables, cls);
        if (found == NULL && PyErr_Occurred()) {
            *outcome = ERR;
            return NULL;
        }
        Py_XINCREF(found);
    }
    if (found == NULL) found = PyObject_CallOneArg(ctx->resolver, url);
    if (found == NULL) {
        *outcome = ERR;
        return NULL;
    }
    if (!PyObject_TypeCheck(found, &TableType)) {
        Py_DECREF(found);
        *outcome = DECLINE; /* a type the registry does not know, or a malformed URL */
        return NULL;
    }
    Table *t = (Table *)found;
    if ((t->flags & (TF_UNSUPPORTED | TF_HAS_REQUIRED)) || !t->ready) {
        Py_DECREF(found);
        *outcome = DECLINE;
        return NULL;
    }
    *outcome = OK;
    return t;
}

/* cls.FromString(payload).SerializeToString(deterministic=True), as bytes in *out. */
static int repack(Table *inner, Buf *payload, PyObject **out) {
    if (inner->cls == NULL || inner->cls == Py_None) return DECLINE;
    PyObject *data = PyBytes_FromStringAndSize(payload->data, payload->len);
    if (data == NULL) return ERR;
    PyObject *message = PyObject_CallMethodOneArg(inner->cls, C.s_fromstring, data);
    Py_DECREF(data);
    if (message == NULL) { /* e.g. required fields: the Python codec says what is wrong */
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) return ERR;
        PyErr_Clear();
        return DECLINE;
    }
    PyObject *serialize = PyObject_GetAttr(message, C.s_serialize);
    Py_DECREF(message);
    if (serialize == NULL) return ERR;
    PyObject *kwargs = Py_BuildValue("{O:O}", C.s_deterministic, Py_True);
    PyObject *no_args = PyTuple_New(0);
    PyObject *result = kwargs && no_args ? PyObject_Call(serialize, no_args, kwargs) : NULL;
    Py_XDECREF(kwargs);
    Py_XDECREF(no_args);
    Py_DECREF(serialize);
    if (result == NULL) return ERR;
    if (!PyBytes_Check(result)) {
        Py_DECREF(result);
        return DECLINE;
    }
    *out = result;
    return OK;
}

/* The Any's fields: its URL (n bytes at url) and the payload of type inner written in
 * payload, packed as the Python codec packs it. */
int write_any(Ctx *ctx, Buf *b, Table *inner, const char *url, Py_ssize_t n, Buf *payload) {
    PyObject *repacked = NULL;
    int rc = OK;
    if (ctx->repack_maps && (inner->flags & TF_HAS_MAPS) && payload->len) {
        /* This runtime orders map entries otherwise than the core does: have it write the
         * payload, as the Python codec has it written (SerializeToString(deterministic)). */
        rc = repack(inner, payload, &repacked);
    }
    const char *packed = repacked ? PyBytes_AS_STRING(repacked) : payload->data;
    Py_ssize_t packed_len = repacked ? PyBytes_GET_SIZE(repacked) : payload->len;
    if (rc == OK) {
        if (buf_tag(b, 1, 2) != OK || buf_varint(b, (uint64_t)n) != OK ||
            buf_raw(b, url, n) != OK)
            rc = ERR;
    }
    if (rc == OK && packed_len) {
        if (buf_tag(b, 2, 2) != OK || buf_varint(b, (uint64_t)packed_len) != OK ||
            buf_raw(b, packed, packed_len) != OK)
            rc = ERR;
    }
    Py_XDECREF(repacked);
    return rc;
}

static int parse_any(Ctx *ctx, Buf *b, PyObject *v, int depth) {
    if (!PyDict_CheckExact(v)) return DECLINE;
    if (PyDict_GET_SIZE(v) == 0) return OK; /* {}: the empty Any */
    PyObject *url = PyDict_GetItemWithError(v, C.s_type);
    if (url == NULL) return PyErr_Occurred() ? ERR : DECLINE;
    if (!PyUnicode_CheckExact(url)) return DECLINE;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(url, &n);
    if (s == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return ERR;
        PyErr_Clear();
        return DECLINE;
    }
    Py_INCREF(url);
    Py_INCREF(v);
    int rc;
    Table *inner = resolve_type(ctx, url, &rc);
    Buf payload = {0};
    if (rc == OK) {
        if (inner->wkt != W_NONE) {
            PyObject *value = PyDict_GetItemWithError(v, C.s_value);
            if (value == NULL) rc = PyErr_Occurred() ? ERR : DECLINE;
            else if (PyDict_GET_SIZE(v) != 2 || depth + 1 > MAX_DEPTH) rc = DECLINE;
            else rc = parse_message(ctx, &payload, inner, value, depth + 1, 0);
        } else {
            rc = parse_message(ctx, &payload, inner, v, depth + 1, 1);
        }
    }
    if (rc == OK) rc = write_any(ctx, b, inner, s, n, &payload);
    Py_XDECREF(inner);
    buf_free(&payload);
    Py_DECREF(url);
    Py_DECREF(v);
    return rc;
}

int parse_wkt(Ctx *ctx, Buf *b, Table *t, PyObject *value, int depth) {
    switch (t->wkt) {
    case W_TIMESTAMP: return parse_timestamp(b, value);
    case W_DURATION: return parse_duration(b, value);
    case W_FIELD_MASK: return parse_field_mask(b, value);
    case W_STRUCT: return parse_struct_fields(ctx, b, t, value, depth);
    case W_LIST_VALUE: return parse_list_value(ctx, b, t, value, depth);
    case W_VALUE: return parse_value(ctx, b, t, value, depth);
    case W_WRAPPER:
        return parse_scalar(ctx, b, &t->fields[0], value, 0, 0);
    case W_ANY: return parse_any(ctx, b, value, depth);
    default: return DECLINE;
    }
}

typedef struct {
    PyObject *key, *item;
    const char *s;
    Py_ssize_t n;
} KeyItem;

static int cmp_key(const void *a, const void *b) {
    const KeyItem *x = a, *y = b;
    return map_order_str(x->s, x->n, y->s, y->n);
}

static int parse_struct_fields(Ctx *ctx, Buf *b, Table *t, PyObject *v, int depth) {
    if (!PyDict_CheckExact(v)) return DECLINE;
    Py_ssize_t n = PyDict_GET_SIZE(v);
    if (n == 0) return OK;
    if (depth + 2 > MAX_DEPTH) return DECLINE;
    Table *value_table = t->fields[0].sub->fields[1].sub;
    KeyItem *items = PyMem_Calloc((size_t)n, sizeof(KeyItem));
    if (items == NULL) {
        PyErr_NoMemory();
        return ERR;
    }
    Py_ssize_t pos = 0, count = 0;
    PyObject *key, *item;
    int rc = OK;
    while (count < n && PyDict_Next(v, &pos, &key, &item)) {
        KeyItem *e = &items[count++];
        e->key = Py_NewRef(key);
        e->item = Py_NewRef(item);
        if (!PyUnicode_CheckExact(key)) {
            rc = DECLINE;
            break;
        }
        e->s = PyUnicode_AsUTF8AndSize(key, &e->n);
        if (e->s == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) rc = ERR;
            else {
                PyErr_Clear();
                rc = DECLINE;
            }
            break;
        }
    }
    if (rc == OK) {
        qsort(items, (size_t)count, sizeof(KeyItem), cmp_key);
        for (Py_ssize_t i = 0; i < count && rc == OK; i++) {
            Py_ssize_t entry, inner;
            if (buf_tag(b, 1, 2) != OK) {
                rc = ERR;
                break;
            }
            entry = buf_open(b);
            if (buf_tag(b, 1, 2) != OK || buf_varint(b, (uint64_t)items[i].n) != OK ||
                buf_raw(b, items[i].s, items[i].n) != OK || buf_tag(b, 2, 2) != OK) {
                rc = ERR;
                break;
            }
            inner = buf_open(b);
            rc = parse_value(ctx, b, value_table, items[i].item, depth + 2);
            if (rc == OK) rc = buf_close(b, inner);
            if (rc == OK) rc = buf_close(b, entry);
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_XDECREF(items[i].key);
        Py_XDECREF(items[i].item);
    }
    PyMem_Free(items);
    return rc;
}

/* --- emitting ------------------------------------------------------------------------------ */

/* The fields of a message read as a regular message (into a fresh dict), for the units that
 * are built from their fields' JSON values. */
static int emit_plain(Ctx *ctx, Table *t, const uint8_t *p, Py_ssize_t n, int depth,
                      int emit_unpopulated, PyObject **fields) {
    Ctx plain = *ctx;
    plain.emit_unpopulated = emit_unpopulated;
    plain.omit_output_only = 0;
    PyObject *dict = PyDict_New();
    if (dict == NULL) return ERR;
    PyObject *ignored = NULL;
    int rc = emit_message(&plain, t, p, n, depth, &ignored, dict);
    Py_XDECREF(ignored);
    if (rc != OK) {
        Py_DECREF(dict);
        return rc;
    }
    *fields = dict;
    return OK;
}

/* The one value of a dict of at most one key (or NULL when empty), a new reference. */
static PyObject *only_value(PyObject *dict) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    if (PyDict_Next(dict, &pos, &key, &value)) return Py_NewRef(value);
    return NULL;
}

static int emit_value(const uint8_t *p, Py_ssize_t n, int depth, PyObject **out);

/* A Struct from its entries (key 1, Value 2), sorted by key (maps.c). */
static int emit_struct(const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    if (depth > MAX_DEPTH) return DECLINE;
    MapList m = {0};
    int rc = struct_entries(p, n, &m);
    PyObject *dict = NULL;
    if (rc == OK && (dict = PyDict_New()) == NULL) rc = ERR;
    for (Py_ssize_t i = 0; i < m.n && rc == OK; i++) {
        const MapEntry *e = &m.items[i];
        PyObject *key = PyUnicode_DecodeUTF8((const char *)e->key, e->key_n, NULL), *value;
        if (key == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                rc = DECLINE;
            } else {
                rc = ERR;
            }
            break;
        }
        if (e->has_value)
            rc = emit_value(e->value, e->value_end - e->value, depth + 2, &value);
        else
            rc = emit_value(p, 0, depth + 2, &value);
        if (rc == OK) {
            if (PyDict_SetItem(dict, key, value) < 0) rc = ERR;
            Py_DECREF(value);
        }
        Py_DECREF(key);
    }
    map_list_free(&m);
    if (rc != OK) {
        Py_XDECREF(dict);
        return rc;
    }
    *out = dict;
    return OK;
}

static int emit_list_value(const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    if (depth > MAX_DEPTH) return DECLINE;
    PyObject *list = PyList_New(0);
    if (list == NULL) return ERR;
    Rd r = {p, p + n};
    int rc = OK;
    while (r.p < r.end && rc == OK) {
        uint64_t tag, len;
        if (rd_varint(&r, &tag) != OK || tag != ((1 << 3) | 2) || rd_varint(&r, &len) != OK ||
            len > (uint64_t)(r.end - r.p)) {
            rc = DECLINE;
            break;
        }
        PyObject *item = NULL;
        rc = emit_value(r.p, (Py_ssize_t)len, depth + 1, &item);
        r.p += len;
        if (rc == OK) {
            if (PyList_Append(list, item) < 0) rc = ERR;
            Py_DECREF(item);
        }
    }
    if (rc != OK) {
        Py_DECREF(list);
        return rc;
    }
    *out = list;
    return OK;
}

/* A Value: the kind set last (1 null, 2 number, 3 string, 4 bool, 5 struct, 6 list), as
 * wkt._encode_value writes it; a number that is not finite has no JSON form there, and a
 * struct or list given twice would merge: both are left to the Python codec. */
static int emit_value(const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    if (depth > MAX_DEPTH) return DECLINE;
    Rd r = {p, p + n};
    PyObject *value = NULL;
    int kind = 0, rc = OK, null_not_zero = 0;
    while (r.p < r.end && rc == OK) {
        uint64_t tag, v;
        if (rd_varint(&r, &tag) != OK) {
            rc = DECLINE;
            break;
        }
        uint64_t number = tag >> 3;
        int wt = (int)(tag & 7);
        PyObject *item = NULL;
        if ((number == 1 || number == 4) && wt == 0) {
            if (rd_varint(&r, &v) != OK) {
                rc = DECLINE;
                break;
            }
            /* null_value other than NULL_VALUE (0) has no JSON form: the Python codec says so */
            null_not_zero = number == 1 && (uint32_t)v != 0;
            item = Py_NewRef(number == 1 ? Py_None : (v ? Py_True : Py_False));
        } else if (number == 2 && wt == 1) {
            if (r.end - r.p < 8) {
                rc = DECLINE;
                break;
            }
            uint64_t bits = 0;
            for (int i = 7; i >= 0; i--) bits = (bits << 8) | r.p[i];
            r.p += 8;
            double d;
            memcpy(&d, &bits, 8);
            item = PyFloat_FromDouble(d);
            if (item == NULL) rc = ERR;
        } else if (number >= 3 && number <= 6 && number != 4 && wt == 2) {
            if (rd_varint(&r, &v) != OK || v > (uint64_t)(r.end - r.p)) {
                rc = DECLINE;
                break;
            }
            const uint8_t *q = r.p;
            r.p += v;
            if (number == 3) {
                item = PyUnicode_DecodeUTF8((const char *)q, (Py_ssize_t)v, NULL);
                if (item == NULL) {
                    if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                        PyErr_Clear();
                        rc = DECLINE;
                    } else {
                        rc = ERR;
                    }
                }
            } else if ((int)number == kind) {
                rc = DECLINE;
            } else if (number == 5) {
                rc = emit_struct(q, (Py_ssize_t)v, depth + 1, &item);
            } else {
                rc = emit_list_value(q, (Py_ssize_t)v, depth + 1, &item);
            }
        } else {
            rc = DECLINE;
        }
        if (rc == OK) {
            Py_XSETREF(value, item);
            kind = (int)number;
        }
    }
    if (rc == OK && kind == 2 && !isfinite(PyFloat_AS_DOUBLE(value))) rc = DECLINE;
    if (rc == OK && kind == 1 && null_not_zero) rc = DECLINE;
    if (rc != OK) {
        Py_XDECREF(value);
        return rc;
    }
    *out = value ? value : Py_NewRef(Py_None); /* no kind: null, as json_format writes it */
    return OK;
}

/* An Any's wire bytes: its type URL (field 1) and value (field 2), each at most once in
 * effect (the last wins, as a parse would have it); anything else declines. */
int any_parts(const uint8_t *p, Py_ssize_t n, Span *url, Span *value) {
    Rd r = {p, p + n};
    *url = (Span){NULL, 0};
    *value = (Span){NULL, 0};
    while (r.p < r.end) {
        uint64_t tag, len;
        if (rd_varint1(&r, &tag) != OK || (tag & 7) != 2 || rd_varint1(&r, &len) != OK ||
            len > (uint64_t)(r.end - r.p))
            return DECLINE;
        if (tag >> 3 == 1) {
            *url = (Span){r.p, (Py_ssize_t)len};
        } else if (tag >> 3 == 2) {
            *value = (Span){r.p, (Py_ssize_t)len};
        } else {
            return DECLINE;
        }
        r.p += len;
    }
    return OK;
}

/* The type URL as a str, or NULL: with *rc DECLINE when it is not UTF-8 (the Python codec
 * reports it), ERR with an exception set otherwise. */
PyObject *any_url(Span url, int *rc) {
    PyObject *type_url = PyUnicode_DecodeUTF8((const char *)url.p, url.n, NULL);
    *rc = OK;
    if (type_url == NULL) {
        *rc = ERR;
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            *rc = DECLINE;
        }
    }
    return type_url;
}

static int emit_any(Ctx *ctx, const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    Span url_span, value_span;
    if (any_parts(p, n, &url_span, &value_span) != OK) return DECLINE;
    const uint8_t *value = value_span.p;
    Py_ssize_t value_n = value_span.n;
    if (url_span.n == 0) {
        if (value_n) return DECLINE;
        *out = PyDict_New();
        return *out ? OK : ERR;
    }
    int url_rc;
    PyObject *type_url = any_url(url_span, &url_rc);
    if (type_url == NULL) return url_rc;
    int rc;
    Table *inner = resolve_type(ctx, type_url, &rc);
    if (rc != OK) {
        Py_DECREF(type_url);
        return rc;
    }
    PyObject *dict = NULL;
    if (rc == OK) {
        dict = PyDict_New();
        if (dict == NULL || PyDict_SetItem(dict, C.s_type, type_url) < 0) rc = ERR;
    }
    if (rc == OK) {
        if (inner->wkt != W_NONE) {
            PyObject *v = NULL;
            rc = emit_message(ctx, inner, value ? value : (const uint8_t *)"", value_n,
                              depth + 1, &v, NULL);
            if (rc == OK) {
                if (PyDict_SetItem(dict, C.s_value, v) < 0) rc = ERR;
                Py_DECREF(v);
            }
        } else {
            PyObject *ignored = NULL;
            rc = emit_message(ctx, inner, value ? value : (const uint8_t *)"", value_n,
                              depth + 1, &ignored, dict);
            Py_XDECREF(ignored);
        }
    }
    Py_DECREF(inner);
    Py_DECREF(type_url);
    if (rc != OK) {
        Py_XDECREF(dict);
        return rc;
    }
    *out = dict;
    return OK;
}

int emit_wkt(Ctx *ctx, Table *t, const uint8_t *p, Py_ssize_t n, int depth, PyObject **out) {
    if (depth > MAX_DEPTH) return DECLINE;
    PyObject *fields = NULL;
    int rc;
    switch (t->wkt) {
    case W_TIMESTAMP: return emit_timestamp(p, n, out);
    case W_DURATION: return emit_duration(p, n, out);
    case W_FIELD_MASK: return emit_field_mask(p, n, out);
    case W_ANY: return emit_any(ctx, p, n, depth, out);
    case W_STRUCT: return emit_struct(p, n, depth, out);
    case W_LIST_VALUE: return emit_list_value(p, n, depth, out);
    case W_VALUE: return emit_value(p, n, depth, out);
    case W_WRAPPER:
        /* {"value": v} as a regular message, with the default when absent */
        rc = emit_plain(ctx, t, p, n, depth, 1, &fields);
        if (rc != OK) return rc;
        *out = only_value(fields);
        Py_DECREF(fields);
        if (*out == NULL) return DECLINE;
        return OK;
    default:
        return DECLINE;
    }
}
