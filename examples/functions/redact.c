// SPDX-License-Identifier: Apache-2.0
/*
 * redact: masks e-mail addresses. Every byte of an address's local part and domain becomes
 * '*' and the '@' stays, so "mail bob.smith@example.org." becomes
 * "mail *********@***********.". The output has exactly the input's length (byte offsets and
 * Content-Length do not change).
 *
 * An address is
 *   local   a maximal run of 1..64 bytes of [A-Za-z0-9._%+-] (RFC 5321's 64-byte limit), then
 *   '@'     then
 *   domain  two or more labels of [A-Za-z0-9-] joined by single dots, at most 253 bytes;
 *           a trailing dot ends the domain and is not masked.
 * A run of local-part bytes longer than 64 is not an address, and neither is one that starts
 * right where an address ends. Outside these limits the result is what the regular expression
 *   (?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+
 * matches (check.py compares the two).
 *
 * Streaming: bytes that might still turn out to be part of an address are held back, at most
 * 64 + 1 + 253 bytes; everything before them is already written. So an address straddling
 * two reads is masked like any other.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "quarry.h"

#define CHUNK (64 * 1024)
#define LOCAL_MAX 64
#define DOMAIN_MAX 253

static unsigned char in[CHUNK];
static unsigned char out[CHUNK];
static size_t out_len;

/* Bytes held back: a local part candidate, then '@' and the domain so far. */
static unsigned char pend[LOCAL_MAX + 1 + DOMAIN_MAX + 1];
static size_t pend_len;

enum state {
    TEXT,    /* pend holds the current run of local-part bytes (<= LOCAL_MAX) */
    LONGRUN, /* inside a run of local-part bytes that cannot be a local part: too long, or
                straight after an address */
    DOMAIN,  /* pend holds local '@' domain-so-far */
};
static enum state st = TEXT;
static size_t at_pos;    /* index of '@' in pend (DOMAIN) */
static size_t label_len; /* bytes in the current domain label (DOMAIN) */
static int dots;         /* dots in the domain so far (DOMAIN) */

static int is_local(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int is_label(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-';
}

static void flush_out(void) {
    if (quarry_write_all(out, out_len) != 0) {
        exit(1);
    }
    out_len = 0;
}

static void emit(const unsigned char *p, size_t n) {
    while (n > 0) {
        if (out_len == sizeof out) {
            flush_out();
        }
        size_t k = sizeof out - out_len;
        if (k > n) {
            k = n;
        }
        memcpy(out + out_len, p, k);
        out_len += k;
        p += k;
        n -= k;
    }
}

static void emit_byte(unsigned char c) {
    emit(&c, 1);
}

static void emit_stars(size_t n) {
    static const unsigned char stars[64] = {
        [0 ... 63] = '*',
    };
    while (n > 0) {
        size_t k = n < sizeof stars ? n : sizeof stars;
        emit(stars, k);
        n -= k;
    }
}

/* Starts a local-part candidate from BYTES (already known to be local-part bytes). */
static void start_run(const unsigned char *bytes, size_t n) {
    if (n > LOCAL_MAX) {
        emit(bytes, n);
        pend_len = 0;
        st = LONGRUN;
        return;
    }
    memmove(pend, bytes, n);
    pend_len = n;
    st = TEXT;
}

/* The domain ended (at a byte that is not part of it, or at the end of the input). */
static void finish_domain(void) {
    size_t dom = pend_len - at_pos - 1;
    int trailing_dot = dom > 0 && pend[pend_len - 1] == '.';
    if (trailing_dot) {
        dom--;
    }
    int valid = dom > 0 && (dots - trailing_dot) >= 1;
    if (valid) {
        emit_stars(at_pos);
        emit_byte('@');
        emit_stars(dom);
        if (trailing_dot) {
            emit_byte('.');
        }
        pend_len = 0;
        /* Local-part bytes right after an address cannot start the next one. */
        st = LONGRUN;
        return;
    }
    /* Not an address: the local part and '@' go out as they are, and what followed the '@'
     * (all local-part bytes) may itself be the local part of a later address. */
    emit(pend, at_pos + 1);
    start_run(pend + at_pos + 1, pend_len - at_pos - 1);
}

static void feed(unsigned char c) {
    for (;;) {
        switch (st) {
        case TEXT:
            if (is_local(c)) {
                if (pend_len == LOCAL_MAX) {
                    emit(pend, pend_len);
                    pend_len = 0;
                    emit_byte(c);
                    st = LONGRUN;
                } else {
                    pend[pend_len++] = c;
                }
            } else if (c == '@' && pend_len > 0) {
                at_pos = pend_len;
                pend[pend_len++] = c;
                label_len = 0;
                dots = 0;
                st = DOMAIN;
            } else {
                emit(pend, pend_len);
                pend_len = 0;
                emit_byte(c);
            }
            return;
        case LONGRUN:
            emit_byte(c);
            if (!is_local(c)) {
                st = TEXT;
            }
            return;
        case DOMAIN:
            if (pend_len - at_pos - 1 < DOMAIN_MAX) {
                if (is_label(c)) {
                    pend[pend_len++] = c;
                    label_len++;
                    return;
                }
                if (c == '.' && label_len > 0) {
                    pend[pend_len++] = c;
                    label_len = 0;
                    dots++;
                    return;
                }
            }
            finish_domain();
            continue; /* C was not part of the domain: look at it again as text */
        }
    }
}

int main(void) {
    for (;;) {
        ssize_t n = quarry_read(in, sizeof in);
        if (n < 0) {
            perror("redact: read");
            return 1;
        }
        if (n == 0) {
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            feed(in[i]);
        }
    }
    if (st == DOMAIN) {
        finish_domain();
    }
    emit(pend, pend_len);
    flush_out();
    return 0;
}
