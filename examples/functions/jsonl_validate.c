// SPDX-License-Identifier: Apache-2.0
/*
 * jsonl_validate: checks that every line of a JSON Lines upload is one JSON text (RFC 8259)
 * and passes the body through unchanged. Meant for the put event: on the first bad line it
 * rejects the upload with 400 "line N: <reason> at column C" (N and C 1-based, C in bytes),
 * so nothing is stored.
 *
 * Lines are separated by "\n"; a "\r" before it is whitespace. Empty lines and lines of
 * only whitespace are skipped. Strings must be valid UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF); \uXXXX escapes are checked for four hex digits only, so an
 * unpaired escaped surrogate is accepted, as RFC 8259's grammar allows. A byte-order mark is
 * not accepted. Nesting deeper than 512 arrays/objects is rejected.
 *
 * Streaming: a push parser (one state, a bit stack of open containers, a few counters) so
 * lines may be of any length and straddle reads; memory is fixed.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "quarry.h"

#define CHUNK (64 * 1024)
#define MAX_DEPTH 512

static unsigned char buf[CHUNK];

enum state {
    LINE_START,   /* only whitespace so far on this line */
    VALUE,        /* a value must follow (after ':' or after ',' in an array) */
    VALUE_OR_END, /* after '[': a value or ']' */
    KEY_OR_END,   /* after '{': a key or '}' */
    KEY,          /* after ',' in an object: a key */
    COLON,        /* after a key */
    AFTER_VALUE,  /* after a value: ',', a closer, or (at depth 0) only whitespace */
    STRING,
    STRING_ESC,   /* after a backslash */
    STRING_HEX,   /* inside \uXXXX, `hex_left` digits to go */
    UTF8_CONT,    /* inside a multi-byte UTF-8 sequence in a string */
    NUM_MINUS,    /* after '-' */
    NUM_ZERO,     /* after a leading 0 */
    NUM_INT,      /* in the integer digits */
    NUM_DOT,      /* after '.' */
    NUM_FRAC,     /* in the fraction digits */
    NUM_EXP,      /* after 'e' or 'E' */
    NUM_EXP_SIGN, /* after the exponent's sign */
    NUM_EXP_DIGITS,
    LITERAL,      /* inside true/false/null */
};

static struct {
    enum state st;
    int is_key;              /* the string being read is an object key */
    unsigned depth;
    uint8_t stack[MAX_DEPTH / 8]; /* bit set: an object is open at that depth */
    int hex_left;
    int utf8_left;
    unsigned char utf8_lo, utf8_hi; /* allowed range of the next continuation byte */
    const char *literal;
    uint64_t line, column;
} p = {.st = LINE_START, .line = 1};

__attribute__((noreturn)) static void fail(const char *reason, int byte) {
    char msg[160];
    int n;
    if (byte < 0) {
        n = snprintf(msg, sizeof msg, "line %llu: %s", (unsigned long long)p.line, reason);
    } else if (byte >= 0x21 && byte <= 0x7e) {
        n = snprintf(msg, sizeof msg, "line %llu: %s '%c' at column %llu",
                     (unsigned long long)p.line, reason, byte, (unsigned long long)p.column);
    } else {
        n = snprintf(msg, sizeof msg, "line %llu: %s byte 0x%02x at column %llu",
                     (unsigned long long)p.line, reason, byte, (unsigned long long)p.column);
    }
    fprintf(stderr, "jsonl_validate: %s\n", msg);
    quarry_reject(400, msg, (size_t)n);
}

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

static int is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_object(unsigned depth) {
    return (p.stack[depth / 8] >> (depth % 8)) & 1;
}

static void open_container(int object) {
    if (p.depth == MAX_DEPTH) {
        fail("nesting deeper than 512", -1);
    }
    if (object) {
        p.stack[p.depth / 8] |= (uint8_t)(1u << (p.depth % 8));
    } else {
        p.stack[p.depth / 8] &= (uint8_t)~(1u << (p.depth % 8));
    }
    p.depth++;
}

/* A value just ended. */
static void end_value(void) {
    p.st = AFTER_VALUE;
}

/* Starts a value with byte C, or fails. */
static void start_value(unsigned char c) {
    switch (c) {
    case '{':
        open_container(1);
        p.st = KEY_OR_END;
        return;
    case '[':
        open_container(0);
        p.st = VALUE_OR_END;
        return;
    case '"':
        p.is_key = 0;
        p.st = STRING;
        return;
    case '-':
        p.st = NUM_MINUS;
        return;
    case '0':
        p.st = NUM_ZERO;
        return;
    case 't':
        p.literal = "rue";
        p.st = LITERAL;
        return;
    case 'f':
        p.literal = "alse";
        p.st = LITERAL;
        return;
    case 'n':
        p.literal = "ull";
        p.st = LITERAL;
        return;
    default:
        if (c >= '1' && c <= '9') {
            p.st = NUM_INT;
            return;
        }
        fail("expected a value, got", c);
    }
}

/* Closes the innermost container with C (']' or '}'), or fails. */
static void close_container(unsigned char c) {
    if (p.depth == 0 || is_object(p.depth - 1) != (c == '}')) {
        fail("unexpected", c);
    }
    p.depth--;
    end_value();
}

/* Bytes a string may hold after a lead byte C (RFC 3629 table); 0 when C cannot lead. */
static int utf8_lead(unsigned char c) {
    p.utf8_lo = 0x80;
    p.utf8_hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        return 1;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (c == 0xe0) {
            p.utf8_lo = 0xa0; /* no overlong forms */
        } else if (c == 0xed) {
            p.utf8_hi = 0x9f; /* no surrogates */
        }
        return 2;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (c == 0xf0) {
            p.utf8_lo = 0x90;
        } else if (c == 0xf4) {
            p.utf8_hi = 0x8f; /* nothing past U+10FFFF */
        }
        return 3;
    }
    return 0;
}

/* A number ends at C (not part of it): the number is complete; look at C again. */
static int number_complete(void) {
    return p.st == NUM_ZERO || p.st == NUM_INT || p.st == NUM_FRAC || p.st == NUM_EXP_DIGITS;
}

static void end_line(void) {
    switch (p.st) {
    case LINE_START:
        break;
    case AFTER_VALUE:
        if (p.depth != 0) {
            fail("line ends inside an array or object", -1);
        }
        break;
    case STRING:
    case STRING_ESC:
    case STRING_HEX:
    case UTF8_CONT:
        fail("line ends inside a string", -1);
    default:
        if (p.depth != 0) {
            fail("line ends inside an array or object", -1);
        }
        if (!number_complete()) {
            fail("line ends inside a value", -1);
        }
        break;
    }
    p.st = LINE_START;
    p.depth = 0;
    p.line++;
    p.column = 0;
}

static void feed(unsigned char c) {
    for (;;) {
        switch (p.st) {
        case LINE_START:
        case VALUE:
            if (is_ws(c)) {
                return;
            }
            start_value(c);
            return;
        case VALUE_OR_END:
            if (is_ws(c)) {
                return;
            }
            if (c == ']') {
                close_container(c);
                return;
            }
            start_value(c);
            return;
        case KEY_OR_END:
        case KEY:
            if (is_ws(c)) {
                return;
            }
            if (c == '}' && p.st == KEY_OR_END) {
                close_container(c);
                return;
            }
            if (c != '"') {
                fail("expected a string key, got", c);
            }
            p.is_key = 1;
            p.st = STRING;
            return;
        case COLON:
            if (is_ws(c)) {
                return;
            }
            if (c != ':') {
                fail("expected ':', got", c);
            }
            p.st = VALUE;
            return;
        case AFTER_VALUE:
            if (is_ws(c)) {
                return;
            }
            if (p.depth == 0) {
                fail("unexpected data after the value:", c);
            }
            if (c == ',') {
                p.st = is_object(p.depth - 1) ? KEY : VALUE;
                return;
            }
            if (c == ']' || c == '}') {
                close_container(c);
                return;
            }
            fail("expected ',' or a closing bracket, got", c);
        case STRING:
            if (c == '"') {
                if (p.is_key) {
                    p.st = COLON;
                } else {
                    end_value();
                }
            } else if (c == '\\') {
                p.st = STRING_ESC;
            } else if (c < 0x20) {
                fail("unescaped control character in string:", c);
            } else if (c >= 0x80) {
                p.utf8_left = utf8_lead(c);
                if (p.utf8_left == 0) {
                    fail("invalid UTF-8 in string:", c);
                }
                p.st = UTF8_CONT;
            }
            return;
        case UTF8_CONT:
            if (c < p.utf8_lo || c > p.utf8_hi) {
                fail("invalid UTF-8 in string:", c);
            }
            p.utf8_lo = 0x80;
            p.utf8_hi = 0xbf;
            if (--p.utf8_left == 0) {
                p.st = STRING;
            }
            return;
        case STRING_ESC:
            if (c == 'u') {
                p.hex_left = 4;
                p.st = STRING_HEX;
            } else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
                p.st = STRING;
            } else {
                fail("invalid escape in string: \\", c);
            }
            return;
        case STRING_HEX:
            if (!is_hex(c)) {
                fail("invalid \\u escape in string:", c);
            }
            if (--p.hex_left == 0) {
                p.st = STRING;
            }
            return;
        case NUM_MINUS:
            if (c == '0') {
                p.st = NUM_ZERO;
            } else if (c >= '1' && c <= '9') {
                p.st = NUM_INT;
            } else {
                fail("expected a digit after '-', got", c);
            }
            return;
        case NUM_ZERO:
        case NUM_INT:
            if (c >= '0' && c <= '9') {
                if (p.st == NUM_ZERO) {
                    fail("leading zero in number:", c);
                }
                return;
            }
            if (c == '.') {
                p.st = NUM_DOT;
                return;
            }
            if (c == 'e' || c == 'E') {
                p.st = NUM_EXP;
                return;
            }
            end_value();
            continue;
        case NUM_DOT:
            if (c < '0' || c > '9') {
                fail("expected a digit after '.', got", c);
            }
            p.st = NUM_FRAC;
            return;
        case NUM_FRAC:
            if (c >= '0' && c <= '9') {
                return;
            }
            if (c == 'e' || c == 'E') {
                p.st = NUM_EXP;
                return;
            }
            end_value();
            continue;
        case NUM_EXP:
            if (c == '+' || c == '-') {
                p.st = NUM_EXP_SIGN;
                return;
            }
            /* fall through */
        case NUM_EXP_SIGN:
            if (c < '0' || c > '9') {
                fail("expected a digit in the exponent, got", c);
            }
            p.st = NUM_EXP_DIGITS;
            return;
        case NUM_EXP_DIGITS:
            if (c >= '0' && c <= '9') {
                return;
            }
            end_value();
            continue;
        case LITERAL:
            if (c != (unsigned char)*p.literal) {
                fail("invalid literal:", c);
            }
            if (*++p.literal == '\0') {
                end_value();
            }
            return;
        }
    }
}

/* Scans the plain bytes of a string quickly; returns how many of S[0..N) were plain. */
static size_t skip_plain_string(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\') {
        i++;
    }
    return i;
}

int main(void) {
    for (;;) {
        ssize_t n = quarry_read(buf, sizeof buf);
        if (n < 0) {
            perror("jsonl_validate: read");
            return 1;
        }
        if (n == 0) {
            break;
        }
        for (size_t i = 0; i < (size_t)n; i++) {
            if (p.st == STRING) {
                size_t k = skip_plain_string(buf + i, (size_t)n - i);
                p.column += k;
                i += k;
                if (i == (size_t)n) {
                    break;
                }
            }
            unsigned char c = buf[i];
            if (c == '\n') {
                end_line();
                continue;
            }
            p.column++;
            feed(c);
        }
        /* The chunk is valid so far: pass it on. A later reject discards the whole upload. */
        if (quarry_write_all(buf, (size_t)n) != 0) {
            return 1;
        }
    }
    if (p.st != LINE_START) {
        /* The last line has no final newline: check it like any other. */
        end_line();
    }
    return 0;
}
