/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csv-filter: the CSV rows whose field in one column equals a value, emitted verbatim. The
 * device twin of the built-in `csv-filter` kernel with op=eq and no projection; it reads rows
 * and fields by the same rules (kernels/src/csv.rs): every '"' toggles quoting, rows end at a
 * '\n' outside quotes, a '\r' before that '\n' is not part of the last field, and a field's
 * value has its quoting removed ("" inside quotes reads as one '"').
 *
 * Parameters:
 *   column   #N (0-based index) or a header name
 *   value    what the field must equal (at most 4096 bytes)
 *   numeric  "true": compare as fixed-point decimals ([+-]digits[.digits], at most 12 integer
 *            digits, 6 fractional digits kept, the rest truncated); a field that is not a
 *            number never matches
 *   header   "true": the job's first row is the header; it names the columns and is emitted
 *            first
 * Framing: CSV rows.
 */
#include "quarry_bpf.h"

#define MAX_VALUE 4096
#define MAX_NAME 1024

struct state {
	__u64 ready;    /* parameters read */
	__u64 resolved; /* column known (after the header, if any) */
	__u64 column;
	__u64 numeric;
	__u64 header;
	__u64 header_seen; /* the header row has been read */
	__s64 number;   /* the value in micro-units, when numeric */
	__u64 value_len;
	__u64 name_len; /* 0: the column was given as #N */
	__u8 value[MAX_VALUE];
	__u8 name[MAX_NAME];
};

/* A streaming parser of the decimals of kernels/src/decimal.rs. */
enum { D_START, D_SIGN, D_INT, D_DOT, D_FRAC, D_BAD };

struct decimal {
	int stage;
	int negative;
	__u32 int_digits;
	__u32 frac_digits;
	__s64 whole;
	__s64 frac;
};

static __always_inline void decimal_push(struct decimal *d, __u8 c)
{
	int digit = c >= '0' && c <= '9';

	switch (d->stage) {
	case D_START:
		if (c == '-' || c == '+') {
			d->negative = c == '-';
			d->stage = D_SIGN;
			return;
		}
		/* fall through */
	case D_SIGN:
		if (!digit) {
			d->stage = D_BAD;
			return;
		}
		d->whole = c - '0';
		d->int_digits = 1;
		d->stage = D_INT;
		return;
	case D_INT:
		if (c == '.') {
			d->stage = D_DOT;
		} else if (digit && d->int_digits < 12) {
			d->whole = d->whole * 10 + (c - '0');
			d->int_digits++;
		} else {
			d->stage = D_BAD;
		}
		return;
	case D_DOT:
	case D_FRAC:
		if (!digit) {
			d->stage = D_BAD;
			return;
		}
		if (d->frac_digits < 6) {
			d->frac = d->frac * 10 + (c - '0');
			d->frac_digits++;
		}
		d->stage = D_FRAC;
		return;
	default:
		return;
	}
}

/* The parsed value in micro-units; returns 0 when the text was not a number. */
static __always_inline int decimal_finish(struct decimal *d, __s64 *micros)
{
	if (d->stage != D_INT && d->stage != D_FRAC)
		return 0;
	__s64 frac = d->frac;
	for (__u32 k = d->frac_digits; k < 6; k++)
		frac *= 10;
	__s64 value = d->whole * 1000000 + frac;
	*micros = d->negative ? -value : value;
	return 1;
}

/*
 * Whether the unescaped value of the raw field data[start..end) equals want[0..want_len)
 * (as text) or, when numeric, parses to the number `number`.
 */
static __always_inline int field_matches(const __u8 *data, __u64 start, __u64 end,
					 const __u8 *want, __u64 want_len, int numeric,
					 __s64 number)
{
	struct decimal d = {};
	__u64 n = 0;
	int quoted = 0;
	__u64 i = start;

	while (i < end) {
		__u8 b = data[i];
		if (b == '"') {
			if (quoted && i + 1 < end && data[i + 1] == '"') {
				i += 2;
			} else {
				quoted = !quoted;
				i++;
				continue;
			}
		} else {
			i++;
		}
		/* b is the next byte of the value. */
		if (numeric) {
			decimal_push(&d, b);
			if (d.stage == D_BAD)
				return 0;
		} else {
			if (n >= want_len || want[n] != b)
				return 0;
			n++;
		}
	}
	if (numeric) {
		__s64 value;
		return decimal_finish(&d, &value) && value == number;
	}
	return n == want_len;
}

/*
 * Scans the row starting at `start`; returns its end (just past its '\n', or len). When the
 * row has field `column`, its raw bounds are left in *fs, *fe and *has is set.
 */
static __always_inline __u64 scan_row(const __u8 *data, __u64 len, __u64 start, __u64 column,
				      __u64 *fs, __u64 *fe, int *has)
{
	__u64 col = 0;
	__u64 field_start = start;
	int quoted = 0;

	*has = 0;
	for (__u64 pos = start; pos < len; pos++) {
		__u8 c = data[pos];
		if (c == '"') {
			quoted = !quoted;
		} else if (!quoted && c == ',') {
			if (col == column) {
				*fs = field_start;
				*fe = pos;
				*has = 1;
			}
			col++;
			field_start = pos + 1;
		} else if (!quoted && c == '\n') {
			if (col == column) {
				__u64 end = pos;
				if (end > field_start && data[end - 1] == '\r')
					end--;
				*fs = field_start;
				*fe = end;
				*has = 1;
			}
			return pos + 1;
		}
	}
	if (col == column) {
		*fs = field_start;
		*fe = len;
		*has = 1;
	}
	return len;
}

/* Reads the parameters into the state; returns 0 or an error code. */
static __always_inline int read_params(struct state *st)
{
	__u8 word[8];
	__s64 n;

	n = quarry_param("value", 5, st->value, MAX_VALUE);
	if (n < 0 || n > MAX_VALUE)
		return 2;
	st->value_len = n;
	n = quarry_param("numeric", 7, word, sizeof(word));
	st->numeric = n > 0 && word[0] == 't';
	n = quarry_param("header", 6, word, sizeof(word));
	st->header = n > 0 && word[0] == 't';
	n = quarry_param("column", 6, st->name, MAX_NAME);
	if (n <= 0 || n > MAX_NAME)
		return 3;
	if (st->name[0] == '#') {
		__u64 index = 0;
		if (n < 2)
			return 3;
		for (__s64 i = 1; i < n; i++) {
			__u8 c = st->name[i];
			if (c < '0' || c > '9')
				return 3;
			index = index * 10 + (c - '0');
		}
		st->column = index;
		st->name_len = 0;
		st->resolved = 1;
	} else {
		st->name_len = n;
		if (!st->header)
			return 3;
	}
	if (st->numeric) {
		struct decimal d = {};
		for (__u64 i = 0; i < st->value_len; i++)
			decimal_push(&d, st->value[i]);
		if (!decimal_finish(&d, &st->number))
			return 5;
	}
	st->ready = 1;
	return 0;
}

/*
 * Reads the header row at the start of the chunk: resolves a column name, emits the row.
 * Returns the offset after it, or 0 with *err set.
 */
static __always_inline __u64 read_header(struct state *st, const __u8 *data, __u64 len, int *err)
{
	__u64 col = 0;
	__u64 field_start = 0;
	__u64 end = len;
	int quoted = 0;
	int found = !st->name_len;

	for (__u64 pos = 0; pos <= len; pos++) {
		int at_end = pos == len;
		__u8 c = at_end ? '\n' : data[pos];
		if (c == '"') {
			quoted = !quoted;
			continue;
		}
		if (!at_end && (quoted || (c != ',' && c != '\n')))
			continue;
		if (!found) {
			__u64 fe = pos;
			if (!at_end && c == '\n' && fe > field_start && data[fe - 1] == '\r')
				fe--;
			if (field_matches(data, field_start, fe, st->name, st->name_len, 0, 0)) {
				st->column = col;
				found = 1;
			}
		}
		if (at_end || c == '\n') {
			end = at_end ? len : pos + 1;
			break;
		}
		col++;
		field_start = pos + 1;
	}
	if (!found) {
		*err = 4;
		return 0;
	}
	st->resolved = 1;
	if (quarry_emit(data, end) < 0) {
		*err = 6;
		return 0;
	}
	return end;
}

QUARRY_CHUNK int csv_filter_chunk(struct quarry_ctx *ctx)
{
	struct state *st = QUARRY_PTR(struct state *, ctx->state);
	const __u8 *data = QUARRY_PTR(const __u8 *, ctx->data);
	__u64 len = ctx->len;
	__u64 pos = 0;

	if (ctx->state_len < sizeof(*st))
		return 1;
	if (!st->ready) {
		int err = read_params(st);
		if (err)
			return err;
	}
	if (len == 0)
		return 0;
	if (st->header && !st->header_seen) {
		int err = 0;
		pos = read_header(st, data, len, &err);
		if (err)
			return err;
		st->header_seen = 1;
	}
	if (!st->resolved)
		return 4;
	while (pos < len) {
		__u64 start = pos, fs = 0, fe = 0;
		int has;
		pos = scan_row(data, len, start, st->column, &fs, &fe, &has);
		if (has && field_matches(data, fs, fe, st->value, st->value_len, st->numeric,
					 st->number)) {
			if (quarry_emit(data + start, pos - start) < 0)
				return 6;
		}
	}
	return 0;
}

char LICENSE[] __attribute__((section("license"), used)) = "Apache-2.0";
