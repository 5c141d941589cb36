/* SPDX-License-Identifier: Apache-2.0
 * Shared by the CSV kernels' OpenCL sources (prepended to each): rows, fields, unescaping,
 * fixed-point decimals and field predicates, with exactly the rules of kernels/src/csv.rs,
 * decimal.rs and predicate.rs. Work-item i owns the rows that START in bytes
 * [i * QC_BLOCK, (i + 1) * QC_BLOCK) of the chunk and processes each whole, even past its
 * block's end; the quote parity at its block's start comes from the SCAN pass. */

#define QC_BLOCK 4096UL

/* A little-endian u32 at p (consts are packed by the host, never aligned). */
uint qc_rd32(__global const uchar *p) {
    return (uint)p[0] | ((uint)p[1] << 8) | ((uint)p[2] << 16) | ((uint)p[3] << 24);
}

/* A little-endian i64 at p. */
long qc_rd64(__global const uchar *p) {
    return (long)((ulong)qc_rd32(p) | ((ulong)qc_rd32(p + 4) << 32));
}

/* Writes v as 8 little-endian bytes at p. */
void qc_wr64(__global uchar *p, ulong v) {
    for (uint k = 0; k < 8; k++) {
        p[k] = (uchar)(v >> (8 * k));
    }
}

/* SCAN: the number of '"' in each block (the executor turns them into prefix sums). */
__kernel void csv_quote_scan(__global const uchar *in, const ulong len,
                             __global const uchar *consts, __global uint *scan) {
    ulong i = get_global_id(0);
    ulong s = i * QC_BLOCK;
    ulong e = min(s + QC_BLOCK, len);
    uint n = 0;
    for (ulong p = s; p < e; p++) {
        n += in[p] == '"';
    }
    scan[i] = n;
}

/* The first row start in block i given the quote parity at its start; the block end (or len)
 * if no row starts in it. */
ulong qc_first_row(__global const uchar *in, ulong len, ulong i, uint parity) {
    ulong s = i * QC_BLOCK;
    ulong e = min(s + QC_BLOCK, len);
    if (s == 0) {
        return 0;
    }
    if (in[s - 1] == '\n' && parity == 0) {
        return s;
    }
    uint q = parity;
    for (ulong p = s; p < e; p++) {
        uchar c = in[p];
        if (c == '"') {
            q ^= 1;
        } else if (c == '\n' && q == 0) {
            return p + 1;
        }
    }
    return e;
}

/* The end of block i (exclusive): rows starting before it belong to work-item i. */
ulong qc_block_end(ulong len, ulong i) {
    return min(i * QC_BLOCK + QC_BLOCK, len);
}

/* Walks the row starting at r; returns its end (past its '\n', or len). If the row has a
 * field `col`, sets [*fs, *fe) to it and *found to 1 (a '\r' before the row's '\n' is not
 * part of the last field). */
ulong qc_scan_row(__global const uchar *in, ulong len, ulong r, uint col,
                  ulong *fs, ulong *fe, int *found) {
    uint q = 0;
    uint f = 0;
    ulong start = r;
    *found = 0;
    for (ulong p = r; p < len; p++) {
        uchar c = in[p];
        if (c == '"') {
            q ^= 1;
        } else if (q == 0 && c == ',') {
            if (f == col) {
                *fs = start;
                *fe = p;
                *found = 1;
            }
            f++;
            start = p + 1;
        } else if (q == 0 && c == '\n') {
            if (f == col) {
                ulong e = p;
                if (e > start && in[e - 1] == '\r') {
                    e--;
                }
                *fs = start;
                *fe = e;
                *found = 1;
            }
            return p + 1;
        }
    }
    if (f == col) {
        *fs = start;
        *fe = len;
        *found = 1;
    }
    return len;
}

/* A reader of a field's unescaped value: every '"' is dropped, except that '""' inside
 * quotes stands for one '"'. */
typedef struct {
    ulong p;
    ulong e;
    uint q;
} qc_esc;

/* The next byte of the value, or -1 at its end. */
int qc_esc_next(__global const uchar *in, qc_esc *s) {
    while (s->p < s->e) {
        uchar c = in[s->p];
        if (c == '"') {
            if (s->q && s->p + 1 < s->e && in[s->p + 1] == '"') {
                s->p += 2;
                return '"';
            }
            s->q ^= 1;
            s->p++;
            continue;
        }
        s->p++;
        return c;
    }
    return -1;
}

/* Compares the field's value with v[0..vlen) bytewise: -1, 0 or 1. */
int qc_cmp_text(__global const uchar *in, ulong fs, ulong fe,
                __global const uchar *v, uint vlen) {
    qc_esc s = {fs, fe, 0};
    for (uint k = 0;; k++) {
        int a = qc_esc_next(in, &s);
        if (k == vlen) {
            return a < 0 ? 0 : 1;
        }
        if (a < 0) {
            return -1;
        }
        int b = v[k];
        if (a != b) {
            return a < b ? -1 : 1;
        }
    }
}

/* Whether the field's value holds v[0..vlen) (the empty value is in every field). */
int qc_contains(__global const uchar *in, ulong fs, ulong fe,
                __global const uchar *v, uint vlen) {
    qc_esc from = {fs, fe, 0};
    for (;;) {
        qc_esc t = from;
        uint k = 0;
        while (k < vlen && qc_esc_next(in, &t) == (int)v[k]) {
            k++;
        }
        if (k == vlen) {
            return 1;
        }
        if (qc_esc_next(in, &from) < 0) {
            return 0;
        }
    }
}

/* Parses the field's value as [+-]DIGITS[.DIGITS] (1..12 integer digits; fractional digits
 * past the sixth truncated) into micro-units; 0 if it is not a number. */
int qc_parse_decimal(__global const uchar *in, ulong fs, ulong fe, long *out) {
    qc_esc s = {fs, fe, 0};
    int c = qc_esc_next(in, &s);
    int neg = 0;
    if (c == '-') {
        neg = 1;
        c = qc_esc_next(in, &s);
    } else if (c == '+') {
        c = qc_esc_next(in, &s);
    }
    long v = 0;
    uint digits = 0;
    while (c >= '0' && c <= '9') {
        if (++digits > 12) {
            return 0;
        }
        v = v * 10 + (c - '0');
        c = qc_esc_next(in, &s);
    }
    if (digits == 0) {
        return 0;
    }
    v *= 1000000L;
    if (c == '.') {
        c = qc_esc_next(in, &s);
        uint fd = 0;
        long f = 0;
        while (c >= '0' && c <= '9') {
            if (fd < 6) {
                f = f * 10 + (c - '0');
            }
            fd++;
            c = qc_esc_next(in, &s);
        }
        if (fd == 0) {
            return 0;
        }
        for (uint k = fd; k < 6; k++) {
            f *= 10;
        }
        v += f;
    }
    if (c != -1) {
        return 0;
    }
    *out = neg ? -v : v;
    return 1;
}

/* A predicate as the host packs it: 24 bytes at ph (op, numeric, column, value_len as u32;
 * the number as i64) and the value's bytes at v. */
#define QC_OP_EQ 0
#define QC_OP_NE 1
#define QC_OP_LT 2
#define QC_OP_LE 3
#define QC_OP_GT 4
#define QC_OP_GE 5
#define QC_OP_CONTAINS 6

/* Whether the field [fs, fe) matches the predicate (found == 0: the row lacks the column). */
int qc_matches(__global const uchar *in, ulong fs, ulong fe, int found,
               __global const uchar *ph, __global const uchar *v) {
    if (!found) {
        return 0;
    }
    uint op = qc_rd32(ph);
    uint vlen = qc_rd32(ph + 12);
    int c;
    if (qc_rd32(ph + 4)) {
        long x;
        if (!qc_parse_decimal(in, fs, fe, &x)) {
            return 0;
        }
        long n = qc_rd64(ph + 16);
        c = x < n ? -1 : (x > n ? 1 : 0);
    } else if (op == QC_OP_CONTAINS) {
        return qc_contains(in, fs, fe, v, vlen);
    } else {
        c = qc_cmp_text(in, fs, fe, v, vlen);
    }
    switch (op) {
    case QC_OP_EQ: return c == 0;
    case QC_OP_NE: return c != 0;
    case QC_OP_LT: return c < 0;
    case QC_OP_LE: return c <= 0;
    case QC_OP_GT: return c > 0;
    case QC_OP_GE: return c >= 0;
    default: return 0;
    }
}

/* Whether the row starting at r matches the predicate; sets *end to the row's end. */
int qc_row_matches(__global const uchar *in, ulong len, ulong r, ulong *end,
                   __global const uchar *ph, __global const uchar *v) {
    ulong fs = 0, fe = 0;
    int found;
    *end = qc_scan_row(in, len, r, qc_rd32(ph + 8), &fs, &fe, &found);
    return qc_matches(in, fs, fe, found, ph, v);
}
