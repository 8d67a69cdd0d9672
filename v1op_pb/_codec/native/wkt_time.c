/* Timestamp, Duration and FieldMask: their JSON strings read into wire bytes and written
 * from them, for both drivers; civil-date arithmetic, 0, 3, 6 or 9 fraction digits,
 * FieldMask paths camelCase <-> snake_case as protobuf's helpers do.
 */
#include "native.h"
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

/* The fraction after the '.' at s[*i]: 1 to 9 digits, as nanoseconds. The digits are
 * counted before they are summed (19 of them would overflow a 64-bit sum). */
static int fraction(const char *s, Py_ssize_t n, Py_ssize_t *i, int64_t *nanos) {
    Py_ssize_t start = ++*i;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') ++*i;
    int count = (int)(*i - start), value;
    if (count < 1 || count > 9 || !digits(s + start, count, &value)) return DECLINE;
    for (*nanos = value; count < 9; count++) *nanos *= 10;
    return OK;
}

static int write_int_field(Buf *b, uint32_t number, int64_t v) {
    if (v == 0) return OK;
    if (buf_tag(b, number, 0) != OK) return ERR;
    return buf_varint(b, (uint64_t)v);
}

/* --- Timestamp ------------------------------------------------------------------------ */

int timestamp_from_text(Buf *b, const char *s, Py_ssize_t n) {
    if (n < 20) return DECLINE;
    int year, month, day, hour, minute, second;
    if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &month) || s[7] != '-' ||
        !digits(s + 8, 2, &day) || s[10] != 'T' || !digits(s + 11, 2, &hour) ||
        s[13] != ':' || !digits(s + 14, 2, &minute) || s[16] != ':' ||
        !digits(s + 17, 2, &second))
        return DECLINE;
    Py_ssize_t i = 19;
    int64_t nanos = 0;
    if (s[i] == '.' && fraction(s, n, &i, &nanos) != OK) return DECLINE;
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

/* --- Duration ------------------------------------------------------------------------- */

int duration_from_text(Buf *b, const char *s, Py_ssize_t n) {
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
    if (i < n && s[i] == '.' && fraction(s, n, &i, &nanos) != OK) return DECLINE;
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

/* --- FieldMask ------------------------------------------------------------------------ */

int field_mask_from_text(Buf *b, const char *s, Py_ssize_t n) {
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

