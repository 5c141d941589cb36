// SPDX-License-Identifier: Apache-2.0
/*
 * gzip: compresses the body into a gzip stream (RFC 1952) and sets Content-Encoding: gzip.
 * Meant for after-get ("gzip on GET", Zion's example); on put it stores the object gzipped.
 * HTTP clients that decode Content-Encoding transparently will show the original bytes.
 *
 * The DEFLATE encoder (RFC 1951) is written out here because zlib is not available for wasm32
 * on Debian. It follows zlib's level-6 strategy: LZ77 over a 32 KiB window with hash chains
 * (at most 128 candidates, a lazy match of one byte), and per block the cheapest of a
 * dynamic-Huffman, fixed-Huffman or stored encoding, so random data grows by only a few bytes
 * per 64 KiB. Memory is fixed (about 450 KiB) whatever the object size.
 *
 * Layout of the window (as zlib): WIN holds 2 x 32 KiB; when the current position reaches
 * the upper half, the upper half moves down and the hash tables are rebased.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "quarry.h"

#define WSIZE 32768u
#define WMASK (WSIZE - 1)
#define MIN_MATCH 3u
#define MAX_MATCH 258u
#define MIN_LOOKAHEAD (MAX_MATCH + MIN_MATCH + 1)
#define MAX_DIST (WSIZE - MIN_LOOKAHEAD) /* keeps every match source inside the window */
#define HASH_BITS 15
#define HASH_SIZE (1u << HASH_BITS)
#define TOO_FAR 4096u  /* a 3-byte match further back than this costs more than literals */
#define MAX_CHAIN 128u /* zlib level 6 */
#define GOOD_MATCH 8u
#define LAZY_MATCH 16u
#define NICE_MATCH 128u
#define SYM_MAX 16384u /* symbols per block */

#define L_CODES 286
#define D_CODES 30
#define BL_CODES 19

/* ------------------------------------------------------------------------ input, crc */

static uint8_t win[2 * WSIZE + MAX_MATCH];
static uint16_t head[HASH_SIZE];   /* latest position per hash, 0 = none */
static uint16_t prev_pos[WSIZE];   /* previous position with the same hash */
static unsigned strstart, lookahead, match_start;
static long block_start; /* where the current block's input starts in WIN; < 0 once slid out */
static int at_eof;
static uint32_t crc_table[256], crc = 0xffffffffu, isize;

static void init_crc(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[n] = c;
    }
}

static void slide_hash(void) {
    for (unsigned i = 0; i < HASH_SIZE; i++) {
        head[i] = head[i] >= WSIZE ? (uint16_t)(head[i] - WSIZE) : 0;
    }
    for (unsigned i = 0; i < WSIZE; i++) {
        prev_pos[i] = prev_pos[i] >= WSIZE ? (uint16_t)(prev_pos[i] - WSIZE) : 0;
    }
}

/* Reads until at least MIN_LOOKAHEAD bytes are ahead of STRSTART or the input ends. */
static void fill_window(void) {
    while (lookahead < MIN_LOOKAHEAD && !at_eof) {
        unsigned more = 2 * WSIZE - lookahead - strstart;
        if (strstart >= WSIZE + MAX_DIST) {
            memcpy(win, win + WSIZE, WSIZE - more);
            match_start -= WSIZE;
            strstart -= WSIZE;
            block_start -= (long)WSIZE;
            slide_hash();
            more += WSIZE;
        }
        uint8_t *dst = win + strstart + lookahead;
        ssize_t n = quarry_read(dst, more);
        if (n < 0) {
            perror("gzip: read");
            exit(1);
        }
        if (n == 0) {
            at_eof = 1;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            crc = crc_table[(crc ^ dst[i]) & 0xff] ^ (crc >> 8);
        }
        isize += (uint32_t)n;
        lookahead += (unsigned)n;
    }
}

static unsigned hash3(const uint8_t *p) {
    uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

/* Inserts the string at POS; returns the previous position with the same hash (0 = none). */
static unsigned insert_string(unsigned pos) {
    unsigned h = hash3(win + pos);
    unsigned old = head[h];
    prev_pos[pos & WMASK] = (uint16_t)old;
    head[h] = (uint16_t)pos;
    return old;
}

/* The longest match at STRSTART longer than PREV_LEN along the chain from CUR (zlib's). */
static unsigned longest_match(unsigned cur, unsigned prev_len) {
    const uint8_t *scan = win + strstart;
    unsigned chain = prev_len >= GOOD_MATCH ? MAX_CHAIN >> 2 : MAX_CHAIN;
    unsigned best = prev_len;
    unsigned limit = strstart > MAX_DIST ? strstart - MAX_DIST : 0;
    unsigned max_len = lookahead < MAX_MATCH ? lookahead : MAX_MATCH;
    unsigned nice = lookahead < NICE_MATCH ? lookahead : NICE_MATCH;
    do {
        const uint8_t *m = win + cur;
        if (m[best] != scan[best] || m[best - 1] != scan[best - 1] || m[0] != scan[0] ||
            m[1] != scan[1]) {
            continue;
        }
        unsigned len = 2;
        while (len < max_len && m[len] == scan[len]) {
            len++;
        }
        if (len > best) {
            match_start = cur;
            best = len;
            if (len >= nice) {
                break;
            }
        }
    } while ((cur = prev_pos[cur & WMASK]) > limit && --chain != 0);
    return best <= lookahead ? best : lookahead;
}

/* ------------------------------------------------------------------------------ output */

static uint8_t obuf[64 * 1024];
static size_t olen;
static uint64_t bitbuf;
static unsigned bitcnt;

static void flush_output(void) {
    if (quarry_write_all(obuf, olen) != 0) {
        exit(1);
    }
    olen = 0;
}

static void put_byte(uint8_t b) {
    if (olen == sizeof obuf) {
        flush_output();
    }
    obuf[olen++] = b;
}

/* Appends the N low bits of V (N <= 32), least significant first, as DEFLATE packs them. */
static void put_bits(uint32_t v, unsigned n) {
    bitbuf |= (uint64_t)v << bitcnt;
    bitcnt += n;
    while (bitcnt >= 8) {
        put_byte((uint8_t)bitbuf);
        bitbuf >>= 8;
        bitcnt -= 8;
    }
}

static void align_byte(void) {
    if (bitcnt > 0) {
        put_bits(0, 8 - bitcnt);
    }
}

static void put_le32(uint32_t v) {
    for (int i = 0; i < 4; i++) {
        put_byte((uint8_t)(v >> (8 * i)));
    }
}

/* ---------------------------------------------------------------------------- symbols */

static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static const uint8_t bl_order[BL_CODES] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                           11, 4,  12, 3, 13, 2, 14, 1, 15};

static uint16_t sym_dist[SYM_MAX]; /* 0 for a literal */
static uint8_t sym_lc[SYM_MAX];    /* the literal, or the match length - 3 */
static unsigned sym_n;
static uint32_t lfreq[L_CODES], dfreq[D_CODES];

static unsigned floor_log2(unsigned v) {
    return 31u - (unsigned)__builtin_clz(v);
}

/* Length code (257..285) of a match of length L0 + 3; *EXTRA gets its extra-bit value. */
static unsigned length_code(unsigned l0, uint32_t *extra) {
    if (l0 < 8) {
        *extra = 0;
        return 257 + l0;
    }
    if (l0 == MAX_MATCH - MIN_MATCH) {
        *extra = 0;
        return 285;
    }
    unsigned nb = floor_log2(l0);
    *extra = l0 & ((1u << (nb - 2)) - 1);
    return 257 + 4 * (nb - 1) + ((l0 >> (nb - 2)) & 3);
}

/* Distance code (0..29) of distance D; *EXTRA gets its extra-bit value. */
static unsigned dist_code(unsigned d, uint32_t *extra) {
    unsigned d0 = d - 1;
    if (d0 < 4) {
        *extra = 0;
        return d0;
    }
    unsigned nb = floor_log2(d0);
    *extra = d0 & ((1u << (nb - 1)) - 1);
    return 2 * nb + ((d0 >> (nb - 1)) & 1);
}

static void tally_lit(uint8_t c) {
    sym_dist[sym_n] = 0;
    sym_lc[sym_n++] = c;
    lfreq[c]++;
}

static void tally_match(unsigned dist, unsigned len) {
    uint32_t extra;
    sym_dist[sym_n] = (uint16_t)dist;
    sym_lc[sym_n++] = (uint8_t)(len - MIN_MATCH);
    lfreq[length_code(len - MIN_MATCH, &extra)]++;
    dfreq[dist_code(dist, &extra)]++;
}

/* ---------------------------------------------------------------------------- huffman */

/*
 * Code lengths of at most LIMIT bits for the N symbols with frequencies FREQ. Builds a plain
 * Huffman tree (two queues over the sorted leaves); while it is too deep, flattens the
 * frequencies and tries again, which ends at a balanced tree. A tree with fewer than two
 * symbols gets two one-bit codes so that every decoder accepts it.
 */
static void build_lengths(const uint32_t *freq, int n, unsigned limit, uint8_t *len) {
    int sym[L_CODES];
    uint32_t f[L_CODES];
    int m = 0;
    for (int i = 0; i < n; i++) {
        len[i] = 0;
        f[i] = freq[i];
        if (freq[i] > 0) {
            sym[m++] = i;
        }
    }
    if (m < 2) {
        int a = m == 1 ? sym[0] : 0;
        len[a] = 1;
        len[a == 0 ? 1 : 0] = 1;
        return;
    }
    for (;;) {
        /* Insertion sort by frequency: at most 286 symbols, once per block. */
        for (int i = 1; i < m; i++) {
            int s = sym[i], j = i;
            while (j > 0 && f[sym[j - 1]] > f[s]) {
                sym[j] = sym[j - 1];
                j--;
            }
            sym[j] = s;
        }
        uint32_t w[2 * L_CODES];
        int parent[2 * L_CODES];
        uint8_t depth[2 * L_CODES];
        for (int i = 0; i < m; i++) {
            w[i] = f[sym[i]];
        }
        int leaf = 0, inner = m;
        for (int k = m; k < 2 * m - 1; k++) {
            int pick[2];
            for (int t = 0; t < 2; t++) {
                if (leaf < m && (inner >= k || w[leaf] <= w[inner])) {
                    pick[t] = leaf++;
                } else {
                    pick[t] = inner++;
                }
            }
            w[k] = w[pick[0]] + w[pick[1]];
            parent[pick[0]] = parent[pick[1]] = k;
        }
        depth[2 * m - 2] = 0;
        unsigned max_depth = 0;
        for (int k = 2 * m - 3; k >= 0; k--) {
            depth[k] = (uint8_t)(depth[parent[k]] + 1);
            if (k < m && depth[k] > max_depth) {
                max_depth = depth[k];
            }
        }
        if (max_depth <= limit) {
            for (int i = 0; i < m; i++) {
                len[sym[i]] = depth[i];
            }
            return;
        }
        for (int i = 0; i < m; i++) {
            f[sym[i]] = (f[sym[i]] + 1) / 2;
        }
    }
}

/* Canonical codes (RFC 1951 3.2.2), bit-reversed for LSB-first output. */
static void build_codes(const uint8_t *len, int n, uint16_t *code) {
    unsigned count[16] = {0}, next[16];
    for (int i = 0; i < n; i++) {
        count[len[i]]++;
    }
    count[0] = 0;
    unsigned c = 0;
    for (int bits = 1; bits < 16; bits++) {
        c = (c + count[bits - 1]) << 1;
        next[bits] = c;
    }
    for (int i = 0; i < n; i++) {
        if (len[i] == 0) {
            continue;
        }
        unsigned v = next[len[i]]++, r = 0;
        for (unsigned b = 0; b < len[i]; b++) {
            r = (r << 1) | ((v >> b) & 1);
        }
        code[i] = (uint16_t)r;
    }
}

/* --------------------------------------------------------------------------- blocks */

struct trees {
    uint8_t llen[288], dlen[32];
    uint16_t lcode[288], dcode[32];
};

static struct trees fixed, dyn;

static void init_fixed(void) {
    for (int i = 0; i < 288; i++) {
        fixed.llen[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    }
    for (int i = 0; i < 32; i++) {
        fixed.dlen[i] = 5;
    }
    build_codes(fixed.llen, 288, fixed.lcode);
    build_codes(fixed.dlen, 32, fixed.dcode);
}

/* Bits the block's symbols take with trees T (extra bits not included). */
static uint64_t data_bits(const struct trees *t) {
    uint64_t bits = 0;
    for (int i = 0; i < L_CODES; i++) {
        bits += (uint64_t)lfreq[i] * t->llen[i];
    }
    for (int i = 0; i < D_CODES; i++) {
        bits += (uint64_t)dfreq[i] * t->dlen[i];
    }
    return bits;
}

static void compress_symbols(const struct trees *t) {
    for (unsigned i = 0; i < sym_n; i++) {
        unsigned lc = sym_lc[i], dist = sym_dist[i];
        if (dist == 0) {
            put_bits(t->lcode[lc], t->llen[lc]);
            continue;
        }
        uint32_t extra;
        unsigned code = length_code(lc, &extra);
        put_bits(t->lcode[code], t->llen[code]);
        put_bits(extra, len_extra[code - 257]);
        code = dist_code(dist, &extra);
        put_bits(t->dcode[code], t->dlen[code]);
        put_bits(extra, dist_extra[code]);
    }
    put_bits(t->lcode[256], t->llen[256]);
}

/* The run-length coded code lengths of a dynamic block header (RFC 1951 3.2.7). */
struct header {
    int hlit, hdist, hclen;
    uint8_t rle_sym[L_CODES + D_CODES], rle_extra[L_CODES + D_CODES];
    int rle_n;
    uint32_t bl_freq[BL_CODES];
    uint8_t bl_len[BL_CODES];
    uint16_t bl_code[BL_CODES];
};

static void rle_push(struct header *h, int s, int extra) {
    h->rle_sym[h->rle_n] = (uint8_t)s;
    h->rle_extra[h->rle_n++] = (uint8_t)extra;
    h->bl_freq[s]++;
}

/* Builds the dynamic header for DYN; returns its size in bits. */
static uint64_t build_header(struct header *h) {
    memset(h, 0, sizeof *h);
    h->hlit = L_CODES;
    while (h->hlit > 257 && dyn.llen[h->hlit - 1] == 0) {
        h->hlit--;
    }
    h->hdist = D_CODES;
    while (h->hdist > 1 && dyn.dlen[h->hdist - 1] == 0) {
        h->hdist--;
    }
    uint8_t lens[L_CODES + D_CODES];
    int n = h->hlit + h->hdist;
    memcpy(lens, dyn.llen, (size_t)h->hlit);
    memcpy(lens + h->hlit, dyn.dlen, (size_t)h->hdist);
    for (int i = 0; i < n;) {
        int cur = lens[i], run = 1;
        while (i + run < n && lens[i + run] == cur) {
            run++;
        }
        i += run;
        if (cur == 0) {
            for (; run >= 11; run -= run < 138 ? run : 138) {
                rle_push(h, 18, (run < 138 ? run : 138) - 11);
            }
            if (run >= 3) {
                rle_push(h, 17, run - 3);
                run = 0;
            }
        } else {
            rle_push(h, cur, 0);
            run--;
            for (; run >= 3; run -= run < 6 ? run : 6) {
                rle_push(h, 16, (run < 6 ? run : 6) - 3);
            }
        }
        for (; run > 0; run--) {
            rle_push(h, cur, 0);
        }
    }
    build_lengths(h->bl_freq, BL_CODES, 7, h->bl_len);
    build_codes(h->bl_len, BL_CODES, h->bl_code);
    h->hclen = BL_CODES;
    while (h->hclen > 4 && h->bl_len[bl_order[h->hclen - 1]] == 0) {
        h->hclen--;
    }
    uint64_t bits = 5 + 5 + 4 + 3 * (uint64_t)h->hclen;
    for (int i = 0; i < h->rle_n; i++) {
        int s = h->rle_sym[i];
        bits += h->bl_len[s] + (s == 16 ? 2 : s == 17 ? 3 : s == 18 ? 7 : 0);
    }
    return bits;
}

static void send_header(const struct header *h) {
    put_bits((uint32_t)(h->hlit - 257), 5);
    put_bits((uint32_t)(h->hdist - 1), 5);
    put_bits((uint32_t)(h->hclen - 4), 4);
    for (int i = 0; i < h->hclen; i++) {
        put_bits(h->bl_len[bl_order[i]], 3);
    }
    for (int i = 0; i < h->rle_n; i++) {
        int s = h->rle_sym[i];
        put_bits(h->bl_code[s], h->bl_len[s]);
        if (s >= 16) {
            put_bits(h->rle_extra[i], s == 16 ? 2 : s == 17 ? 3 : 7);
        }
    }
}

/* Ends the current block with the cheapest encoding of its symbols. */
static void flush_block(int last) {
    static struct header h;
    lfreq[256]++; /* end of block */
    build_lengths(lfreq, L_CODES, 15, dyn.llen);
    build_lengths(dfreq, D_CODES, 15, dyn.dlen);
    build_codes(dyn.llen, L_CODES, dyn.lcode);
    build_codes(dyn.dlen, D_CODES, dyn.dcode);

    uint64_t extra = 0;
    for (int i = 257; i < L_CODES; i++) {
        extra += (uint64_t)lfreq[i] * len_extra[i - 257];
    }
    for (int i = 0; i < D_CODES; i++) {
        extra += (uint64_t)dfreq[i] * dist_extra[i];
    }
    uint64_t dyn_bits = build_header(&h) + data_bits(&dyn) + extra;
    uint64_t fixed_bits = data_bits(&fixed) + extra;
    long raw_len = (long)strstart - block_start;
    uint64_t stored_bits = UINT64_MAX;
    if (block_start >= 0 && raw_len <= 65535) {
        /* header bits, padding to a byte, LEN and NLEN, the bytes */
        stored_bits = 3 + (8 - (bitcnt + 3) % 8) % 8 + 32 + 8 * (uint64_t)raw_len;
    }

    if (stored_bits <= dyn_bits + 3 && stored_bits <= fixed_bits + 3) {
        put_bits((uint32_t)last, 1);
        put_bits(0, 2);
        align_byte();
        put_bits((uint32_t)raw_len, 16);
        put_bits((uint32_t)raw_len ^ 0xffffu, 16);
        for (long i = 0; i < raw_len; i++) {
            put_byte(win[block_start + i]);
        }
    } else if (fixed_bits <= dyn_bits) {
        put_bits((uint32_t)last | 1u << 1, 3);
        compress_symbols(&fixed);
    } else {
        put_bits((uint32_t)last | 2u << 1, 3);
        send_header(&h);
        compress_symbols(&dyn);
    }

    block_start = (long)strstart;
    sym_n = 0;
    memset(lfreq, 0, sizeof lfreq);
    memset(dfreq, 0, sizeof dfreq);
}

/* --------------------------------------------------------------------------- deflate */

/* zlib's deflate_slow: a match is taken only if the next position has no longer one. */
static void deflate_stream(void) {
    unsigned match_length = MIN_MATCH - 1, prev_length, prev_match;
    int match_available = 0;
    for (;;) {
        if (lookahead < MIN_LOOKAHEAD) {
            fill_window();
            if (lookahead == 0) {
                break;
            }
        }
        unsigned hash_head = lookahead >= MIN_MATCH ? insert_string(strstart) : 0;
        prev_length = match_length;
        prev_match = match_start;
        match_length = MIN_MATCH - 1;
        if (hash_head != 0 && prev_length < LAZY_MATCH && strstart - hash_head <= MAX_DIST) {
            match_length = longest_match(hash_head, prev_length);
            if (match_length == MIN_MATCH && strstart - match_start > TOO_FAR) {
                match_length = MIN_MATCH - 1;
            }
        }
        if (prev_length >= MIN_MATCH && match_length <= prev_length) {
            /* The match found at the previous position wins: emit it. */
            unsigned max_insert = strstart + lookahead - MIN_MATCH;
            tally_match(strstart - 1 - prev_match, prev_length);
            lookahead -= prev_length - 1;
            for (prev_length -= 2; prev_length > 0; prev_length--) {
                if (++strstart <= max_insert) {
                    insert_string(strstart);
                }
            }
            match_available = 0;
            match_length = MIN_MATCH - 1;
            strstart++;
            if (sym_n == SYM_MAX) {
                flush_block(0);
            }
        } else if (match_available) {
            /* No match at the previous position, or this one is longer: emit its byte. */
            tally_lit(win[strstart - 1]);
            if (sym_n == SYM_MAX) {
                flush_block(0);
            }
            strstart++;
            lookahead--;
        } else {
            match_available = 1;
            strstart++;
            lookahead--;
        }
    }
    if (match_available) {
        tally_lit(win[strstart - 1]);
    }
    flush_block(1);
}

int main(void) {
    int32_t rc = quarry_set_header_str("content-encoding", "gzip");
    if (rc < 0 && rc != QUARRY_EEVENT) {
        fprintf(stderr, "gzip: set_header(content-encoding) failed: %s (%d)\n",
                quarry_strerror(rc), (int)rc);
        return 1;
    }
    init_crc();
    init_fixed();

    /* RFC 1952 member header: magic, CM=deflate, no flags, no mtime, XFL 0, OS unknown. */
    static const uint8_t gz_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    for (size_t i = 0; i < sizeof gz_header; i++) {
        put_byte(gz_header[i]);
    }
    deflate_stream();
    align_byte();
    put_le32(crc ^ 0xffffffffu);
    put_le32(isize);
    flush_output();
    return 0;
}
