/* SPDX-License-Identifier: Apache-2.0
 * Shared by the built-in kernels' OpenCL sources (prepended to each): the 4096-byte block
 * decomposition and little-endian access to `consts` and outputs. Work-item i owns the
 * records that START in bytes [i * QK_BLOCK, (i + 1) * QK_BLOCK) of the chunk and processes
 * each of them whole, even past its block's end. */

#define QK_BLOCK 4096UL

/* A little-endian u32 at p (consts are packed by the host, never aligned). */
uint qk_rd32(__global const uchar *p) {
    return (uint)p[0] | ((uint)p[1] << 8) | ((uint)p[2] << 16) | ((uint)p[3] << 24);
}

/* Writes v as 4 little-endian bytes at p. */
void qk_wr32(__global uchar *p, uint v) {
    p[0] = (uchar)v;
    p[1] = (uchar)(v >> 8);
    p[2] = (uchar)(v >> 16);
    p[3] = (uchar)(v >> 24);
}

/* The first line start at or after `from`: 0, or just past a '\n'; `len` if none. */
ulong qk_first_line_start(__global const uchar *in, ulong len, ulong from) {
    if (from == 0) {
        return 0;
    }
    ulong s = from;
    while (s < len && in[s - 1] != '\n') {
        s++;
    }
    return s;
}

/* The end of the line starting at s: the offset of its '\n', or len. */
ulong qk_line_end(__global const uchar *in, ulong len, ulong s) {
    ulong e = s;
    while (e < len && in[e] != '\n') {
        e++;
    }
    return e;
}
