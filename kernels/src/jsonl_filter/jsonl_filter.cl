/* SPDX-License-Identifier: Apache-2.0
 * jsonl-filter: JSON-object lines whose top-level field compares true. The scanner is
 * scan.rs, step for step (see its docs for what a line must look like); keep them in
 * lockstep. consts: u32 field length, u32 value length, u32 op (0 eq, 1 ne, 2 contains,
 * 3 exists), the field, the value. Entry points jsonl_filter_count + jsonl_filter_emit
 * (CountEmit). Offsets below are chunk offsets; e is the line's end (its '\n' or len). */

int jf_is_space(uchar c) {
    return c == ' ' || c == '\t' || c == '\r';
}

ulong jf_skip_space(__global const uchar *in, ulong i, ulong e) {
    while (i < e && jf_is_space(in[i])) {
        i++;
    }
    return i;
}

/* The offset of the '"' closing a string whose text starts at i; e when unterminated. */
ulong jf_string_end(__global const uchar *in, ulong i, ulong e) {
    while (i < e) {
        uchar c = in[i];
        if (c == '\\') {
            i += 2;
        } else if (c == '"') {
            return i;
        } else {
            i++;
        }
    }
    return e;
}

/* The raw text [*vs, *ve) of the value at i and the offset *next just past it; 0 if none. */
int jf_value_span(__global const uchar *in, ulong i, ulong e, ulong *vs, ulong *ve,
                  ulong *next) {
    if (i >= e) {
        return 0;
    }
    uchar c = in[i];
    if (c == '"') {
        ulong end = jf_string_end(in, i + 1, e);
        if (end >= e) {
            return 0;
        }
        *vs = i + 1;
        *ve = end;
        *next = end + 1;
        return 1;
    }
    if (c == '{' || c == '[') {
        ulong depth = 0;
        for (ulong k = i; k < e; k++) {
            uchar d = in[k];
            if (d == '"') {
                k = jf_string_end(in, k + 1, e);
                if (k >= e) {
                    return 0;
                }
            } else if (d == '{' || d == '[') {
                depth++;
            } else if (d == '}' || d == ']') {
                depth--;
                if (depth == 0) {
                    *vs = i;
                    *ve = k + 1;
                    *next = k + 1;
                    return 1;
                }
            }
        }
        return 0;
    }
    ulong k = i;
    while (k < e && !jf_is_space(in[k]) && in[k] != ',' && in[k] != '}') {
        k++;
    }
    if (k == i) {
        return 0;
    }
    *vs = i;
    *ve = k;
    *next = k;
    return 1;
}

/* Whether in[s..s+n) equals c[0..m). */
int jf_equal(__global const uchar *in, ulong s, ulong n, __global const uchar *c, uint m) {
    if (n != (ulong)m) {
        return 0;
    }
    for (uint k = 0; k < m; k++) {
        if (in[s + k] != c[k]) {
            return 0;
        }
    }
    return 1;
}

/* Whether in[s..e) holds c[0..m) (always, when m is 0). */
int jf_contains(__global const uchar *in, ulong s, ulong e, __global const uchar *c, uint m) {
    for (ulong i = s; i + m <= e; i++) {
        if (jf_equal(in, i, m, c, m)) {
            return 1;
        }
    }
    return 0;
}

/* Whether the line in[s..e) is kept. */
int jf_line_matches(__global const uchar *in, ulong s, ulong e, __global const uchar *consts) {
    uint flen = qk_rd32(consts);
    uint vlen = qk_rd32(consts + 4);
    uint op = qk_rd32(consts + 8);
    __global const uchar *field = consts + 12;
    __global const uchar *value = field + flen;
    ulong i = jf_skip_space(in, s, e);
    if (i >= e || in[i] != '{') {
        return 0;
    }
    i++;
    for (;;) {
        i = jf_skip_space(in, i, e);
        if (i >= e || in[i] != '"') {
            return 0;
        }
        ulong ks = i + 1;
        ulong ke = jf_string_end(in, ks, e);
        if (ke >= e) {
            return 0;
        }
        i = jf_skip_space(in, ke + 1, e);
        if (i >= e || in[i] != ':') {
            return 0;
        }
        i = jf_skip_space(in, i + 1, e);
        ulong vs = 0, ve = 0, next = 0;
        if (!jf_value_span(in, i, e, &vs, &ve, &next)) {
            return 0;
        }
        if (jf_equal(in, ks, ke - ks, field, flen)) {
            if (op == 0) {
                return jf_equal(in, vs, ve - vs, value, vlen);
            } else if (op == 1) {
                return !jf_equal(in, vs, ve - vs, value, vlen);
            } else if (op == 2) {
                return jf_contains(in, vs, ve, value, vlen);
            }
            return 1;
        }
        i = jf_skip_space(in, next, e);
        if (i >= e || in[i] != ',') {
            return 0;
        }
        i++;
    }
}

__kernel void jsonl_filter_count(__global const uchar *in, const ulong len,
                                 __global const uchar *consts, __global const uint *prefix,
                                 __global uint *counts) {
    ulong i = get_global_id(0);
    ulong b = i * QK_BLOCK;
    if (b >= len) {
        return;
    }
    ulong bend = min(b + QK_BLOCK, len);
    uint total = 0;
    ulong s = qk_first_line_start(in, len, b);
    while (s < bend) {
        ulong e = qk_line_end(in, len, s);
        ulong next = e < len ? e + 1 : len;
        if (jf_line_matches(in, s, e, consts)) {
            total += (uint)(next - s);
        }
        s = next;
    }
    counts[i] = total;
}

__kernel void jsonl_filter_emit(__global const uchar *in, const ulong len,
                                __global const uchar *consts, __global const uint *prefix,
                                __global const uint *offsets, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong b = i * QK_BLOCK;
    if (b >= len) {
        return;
    }
    ulong bend = min(b + QK_BLOCK, len);
    __global uchar *o = out + offsets[i];
    ulong s = qk_first_line_start(in, len, b);
    while (s < bend) {
        ulong e = qk_line_end(in, len, s);
        ulong next = e < len ? e + 1 : len;
        if (jf_line_matches(in, s, e, consts)) {
            for (ulong k = s; k < next; k++) {
                *o++ = in[k];
            }
        }
        s = next;
    }
}
