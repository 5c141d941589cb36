// SPDX-License-Identifier: Apache-2.0
//
// contains.cl: a user OpenCL kernel (filter, framing lines) that keeps the lines holding the
// byte sequence given as the parameter `needle`. See docs/opencl.md for the ABI.
//
//   quarry kernel register contains examples/kernels/contains.cl --shape filter --framing lines
//
// quarry:param needle the bytes a line must hold (required)
//
// Work-item i owns the bytes [i * 4096, (i + 1) * 4096) of the chunk and handles every line
// that starts there (a line may run past the block's end: the item reads on to its end).
// quarry_count says how many bytes item i will write; quarry_emit writes them at
// out + offsets[i]. Both walk the lines the same way, so the counts always match.

#define BLOCK 4096UL

// Finds the parameter `name` in consts ("name=value\n" per parameter, then a NUL byte):
// sets *at to the value's offset and *n to its length; returns 0 when it is absent.
int find_param(__global const uchar *consts, __constant char *name, uint *at, uint *n) {
    uint p = 0;
    while (consts[p] != 0) {
        uint k = 0;
        while (name[k] != 0 && consts[p + k] == (uchar)name[k]) k++;
        int named = name[k] == 0 && consts[p + k] == '=';
        uint e = p;
        while (consts[e] != '\n' && consts[e] != 0) e++;
        if (named) {
            *at = p + k + 1;
            *n = e - (p + k + 1);
            return 1;
        }
        p = consts[e] == '\n' ? e + 1 : e;
    }
    return 0;
}

// The first line that starts in block i (the block's end when none does).
ulong first_start(__global const uchar *in, ulong len, ulong i) {
    ulong s = i * BLOCK;
    ulong e = min(s + BLOCK, len);
    if (s == 0) return 0;
    for (ulong p = s; p < e; p++) if (in[p - 1] == '\n') return p;
    return e;
}

// Just past the end of the line starting at p (its '\n' included).
ulong line_end(__global const uchar *in, ulong len, ulong p) {
    while (p < len && in[p] != '\n') p++;
    return p < len ? p + 1 : len;
}

// Whether in[s, e) holds needle[0, n).
int contains(__global const uchar *in, ulong s, ulong e, __global const uchar *needle, uint n) {
    if (e - s < n) return 0;
    for (ulong p = s; p + n <= e; p++) {
        uint k = 0;
        while (k < n && in[p + k] == needle[k]) k++;
        if (k == n) return 1;
    }
    return 0;
}

__kernel void quarry_count(__global const uchar *in, const ulong len,
                           __global const uchar *consts, __global const uint *prefix,
                           __global uint *counts) {
    ulong i = get_global_id(0);
    ulong e = min(i * BLOCK + BLOCK, len);
    uint at = 0, n = 0;
    uint total = 0;
    if (find_param(consts, "needle", &at, &n)) {
        for (ulong p = first_start(in, len, i); p < e;) {
            ulong le = line_end(in, len, p);
            if (contains(in, p, le, consts + at, n)) total += (uint)(le - p);
            p = le;
        }
    }
    counts[i] = total;
}

__kernel void quarry_emit(__global const uchar *in, const ulong len,
                          __global const uchar *consts, __global const uint *prefix,
                          __global const uint *offsets, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong e = min(i * BLOCK + BLOCK, len);
    uint at = 0, n = 0;
    if (!find_param(consts, "needle", &at, &n)) return;
    __global uchar *o = out + offsets[i];
    for (ulong p = first_start(in, len, i); p < e;) {
        ulong le = line_end(in, len, p);
        if (contains(in, p, le, consts + at, n)) {
            for (ulong q = p; q < le; q++) *o++ = in[q];
        }
        p = le;
    }
}
