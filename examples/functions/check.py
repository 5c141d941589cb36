#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the built example functions without quarryd.

    examples/functions/build.sh /tmp/fn && python3 examples/functions/check.py /tmp/fn

Runs each module under wasmtime (pip install wasmtime) with WASI stdin/stdout files and the
QUARRY_* environment, stubs the "quarry" host calls (recording what the module asked for) and
checks the outputs against Python references: zlib/gzip, json, plain string counting. The
daemon's own tests cover the functions end to end; this is the quick loop for editing them.
Inputs are placed so that interesting bytes straddle the 64 KiB reads the modules make.
"""

import gzip
import json
import os
import random
import re
import sys
import tempfile
import time
import zlib

import wasmtime

CHUNK = 64 * 1024
I32 = wasmtime.ValType.i32()
I64 = wasmtime.ValType.i64()


class Result:
    def __init__(self):
        self.stdout = b""
        self.stderr = b""
        self.code = None  # exit status; None when it trapped or was rejected
        self.trap = None  # trap message
        self.reject = None  # (status, message)
        self.headers = []  # (name, value) from set_header
        self.metadata = []  # (name, value) from set_metadata


class Rejected(Exception):
    pass


class Runner:
    def __init__(self, outdir):
        self.outdir = outdir
        self.config = wasmtime.Config()
        self.config.consume_fuel = True
        self.engine = wasmtime.Engine(self.config)
        self.modules = {}
        self.tmp = tempfile.mkdtemp(prefix="quarry-fn-check-")

    def module(self, name):
        if name not in self.modules:
            self.modules[name] = wasmtime.Module.from_file(
                self.engine, os.path.join(self.outdir, name + ".wasm"))
        return self.modules[name]

    def run(self, name, stdin=b"", params=None, event="after-get", fuel=10**12,
            memory_limit=-1, stdout_path=None):
        res = Result()
        paths = {k: os.path.join(self.tmp, k) for k in ("stdin", "stdout", "stderr")}
        with open(paths["stdin"], "wb") as f:
            f.write(stdin)
        wasi = wasmtime.WasiConfig()
        wasi.stdin_file = paths["stdin"]
        wasi.stdout_file = stdout_path or paths["stdout"]
        wasi.stderr_file = paths["stderr"]
        env = {
            "QUARRY_FUNCTION": name, "QUARRY_EVENT": event, "QUARRY_BUCKET": "b",
            "QUARRY_KEY": "k", "QUARRY_SIZE": str(len(stdin)),
            "QUARRY_CONTENT_TYPE": "text/plain",
        }
        for k, v in (params or {}).items():
            env["QUARRY_PARAM_" + k.upper().replace("-", "_")] = v
        wasi.env = list(env.items())

        store = wasmtime.Store(self.engine)
        store.set_wasi(wasi)
        store.set_fuel(fuel)
        if memory_limit >= 0:
            store.set_limits(memory_size=memory_limit)
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        self.define_quarry(linker, res)
        try:
            instance = linker.instantiate(store, self.module(name))
            instance.exports(store)["_start"](store)
            res.code = 0
        except wasmtime.ExitTrap as e:
            res.code = e.code
        except Rejected:
            pass
        except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
            if res.reject is None:
                res.trap = str(e)
        if stdout_path is None:
            with open(paths["stdout"], "rb") as f:
                res.stdout = f.read()
        with open(paths["stderr"], "rb") as f:
            res.stderr = f.read()
        return res

    @staticmethod
    def define_quarry(linker, res):
        def text(caller, ptr, length):
            return bytes(caller["memory"].read(caller, ptr, ptr + length)).decode()

        def set_header(caller, n, nl, v, vl):
            res.headers.append((text(caller, n, nl), text(caller, v, vl)))
            return 0

        def set_metadata(caller, n, nl, v, vl):
            res.metadata.append((text(caller, n, nl), text(caller, v, vl)))
            return 0

        def reject(caller, status, m, ml):
            res.reject = (status, text(caller, m, ml))
            raise Rejected()

        def unavailable(*_args):
            return -5

        sigs = {
            "set_header": ([I32] * 4, [I32], set_header, True),
            "set_metadata": ([I32] * 4, [I32], set_metadata, True),
            "rewrite_key": ([I32] * 2, [I32], unavailable, False),
            "redirect": ([I32] * 2, [I32], unavailable, False),
            "reject": ([I32] * 3, [], reject, True),
            "object_size": ([I32] * 2, [I64], unavailable, False),
            "object_read": ([I32, I32, I64, I32, I32], [I64], unavailable, False),
            "object_write": ([I32] * 4, [I32], unavailable, False),
        }
        for name, (params, results, fn, caller) in sigs.items():
            linker.define_func("quarry", name, wasmtime.FuncType(params, results), fn,
                               access_caller=caller)


# ------------------------------------------------------------------------------ helpers

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def ok(res, what):
    check(res.code == 0 and res.trap is None and res.reject is None,
          f"{what}: exit {res.code}, trap {res.trap}, reject {res.reject}, "
          f"stderr {res.stderr[:200]!r}")


def straddle(prefix_len, payload, pad=b" "):
    """PAD bytes so that PAYLOAD starts PREFIX_LEN bytes before a 64 KiB boundary."""
    return pad * (CHUNK - prefix_len) + payload


# -------------------------------------------------------------------------------- cases

def check_wordcount(r):
    def expect(data, word):
        if word == b"":
            return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        return sum(1 for line in data.split(b"\n") if word in line)

    cases = [
        (b"", "banana"), (b"banana", "banana"), (b"banana\n", "banana"),
        (b"a banana\nno\nbananas and banana\n\nbanan\na\n", "banana"),
        (b"aaab\naab\nab\n", "aab"), (b"ababab\nabab\naba\n", "abab"),
        (b"x\n\ny", ""), (b"", ""), (b"\n\n", ""),
        (straddle(3, b"banana\n"), "banana"),  # the word crosses a read boundary
        (straddle(1, b"banana\n"), "banana"),
        (b"x" * 300000 + b"banana" + b"y" * 100000 + b"\nbanana", "banana"),  # long lines
        (b"ban\n" * 50000 + b"banana", "banana"),
    ]
    rng = random.Random(1)
    for _ in range(40):
        n = rng.choice([10, 1000, 70000, 200000])
        data = bytes(rng.choice(b"ab\n") for _ in range(n))
        cases.append((data, rng.choice(["aba", "abba", "aab", "b", "abab"])))
    for data, word in cases:
        res = r.run("wordcount", data, {"word": word})
        ok(res, f"wordcount word={word!r} len={len(data)}")
        want = f"{expect(data, word.encode())}\n".encode()
        check(res.stdout == want, f"wordcount word={word!r} len={len(data)}: "
                                  f"got {res.stdout!r}, want {want!r}")
    res = r.run("wordcount", b"banana\nbanana\nx\n")
    check(res.stdout == b"2\n", f"wordcount default word: {res.stdout!r}")
    res = r.run("wordcount", b"x", {"word": "a\nb"})
    check(res.code == 2, "wordcount: word with a newline must exit 2")


def text_corpus(size):
    words = ("the quick brown fox jumps over the lazy dog storage node object bucket "
             "function quarry wasm stream chunk offset length").split()
    rng = random.Random(7)
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def check_gzip(r):
    rng = random.Random(2)
    inputs = {
        "empty": b"",
        "1 byte": b"a",
        "3 bytes": b"abc",
        "all bytes": bytes(range(256)) * 3,
        "1 MiB random": rng.randbytes(1 << 20),
        "5 MiB repetitive text": (b"All work and no play makes Jack a dull boy.\n"
                                  * 120000)[:5 << 20],
        "2 MiB text": text_corpus(2 << 20),
        "zeros 200000": bytes(200000),
        "window edge": rng.randbytes(1000) * 66 + b"tail",
        "65535": text_corpus(65535),
        "65536": text_corpus(65536),
        "65537": text_corpus(65537),
        "mixed": rng.randbytes(300000) + text_corpus(300000) + bytes(70000) + rng.randbytes(5),
    }
    src = b""
    for root, _, files in os.walk(os.path.dirname(os.path.abspath(__file__))):
        for f in sorted(files):
            if f.endswith((".c", ".md", ".py", ".wat")):
                with open(os.path.join(root, f), "rb") as fh:
                    src += fh.read()
    inputs["these sources"] = src
    for what, data in inputs.items():
        t = time.monotonic()
        res = r.run("gzip", data)
        secs = time.monotonic() - t
        ok(res, f"gzip {what}")
        check(("content-encoding", "gzip") in res.headers, f"gzip {what}: headers {res.headers}")
        try:
            back = gzip.decompress(res.stdout)
        except Exception as e:  # noqa: BLE001 - any decoder error is a failure
            check(False, f"gzip {what}: does not decompress: {e}")
            continue
        check(back == data, f"gzip {what}: round trip differs")
        z6 = len(gzip.compress(data, 6, mtime=0))
        print(f"  gzip {what:24} {len(data):>8} -> {len(res.stdout):>8} bytes "
              f"({len(res.stdout) / max(1, len(data)):.3f}; zlib -6: {z6 / max(1, len(data)):.3f}) "
              f"{secs:.2f}s")
        if what == "5 MiB repetitive text":
            check(len(res.stdout) < len(data) / 50, f"gzip {what}: ratio too poor")
        if what == "2 MiB text":
            check(len(res.stdout) < z6 * 1.1, f"gzip {what}: more than 10% worse than zlib -6")
        if what == "1 MiB random":
            check(len(res.stdout) < len(data) + 1024, f"gzip {what}: grew too much")
    # Python's zlib agrees byte for byte on the checksums: decompress checks them already;
    # also check the header's fields.
    res = r.run("gzip", b"hello")
    check(res.stdout[:3] == b"\x1f\x8b\x08" and zlib.crc32(b"hello").to_bytes(4, "little")
          == res.stdout[-8:-4], "gzip: header or crc")


EMAIL = re.compile(rb"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]{1,64})@"
                   rb"([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def redact_reference(data):
    return EMAIL.sub(lambda m: b"*" * len(m.group(1)) + b"@" + b"*" * len(m.group(2)), data)


def check_redact(r):
    cases = {
        b"": b"",
        b"mail bob.smith@example.org.": b"mail *********@***********.",
        b"a@b.c": b"*@***",
        b"<alice+tag@mail.example.co.uk>": b"<*********@******************>",
        b"not an address: a@b, @example.com, x@.com, y@com.": None,
        b"x" * 65 + b"@example.com": None,  # local part over 64 bytes
        b"x" * 64 + b"@example.com": b"*" * 64 + b"@" + b"*" * 11,
        b"a@b@c.com": b"a@*@*****",
        b"two: a@x.io,b@y.io\n": b"two: *@****,*@****\n",
        b"dots: a@b..c": None,
        "ünïcode ü@x.de é@y.de".encode(): None,
    }
    for data, want in cases.items():
        want = data if want is None else want
        res = r.run("redact", data)
        ok(res, f"redact {data[:40]!r}")
        check(res.stdout == want, f"redact {data[:60]!r}: got {res.stdout[:100]!r}")
    # Addresses straddling a read boundary come out as if they did not.
    text = b"contact alice.jones@example.com or bob@sub.example.org today\n"
    alone = r.run("redact", text).stdout
    check(alone == redact_reference(text), f"redact reference: {alone!r}")
    for k in range(1, len(text)):
        res = r.run("redact", straddle(k, text))
        check(res.stdout[CHUNK - k:] == alone and len(res.stdout) == CHUNK - k + len(text),
              f"redact straddling at {k}: {res.stdout[CHUNK - k:]!r}")
    # Random text agrees with a regex reference (addresses well under the length limits).
    rng = random.Random(3)
    parts = [b"bob", b"a.b", b"x_y", b"@", b".", b"com", b"example", b" ", b"\n", b"-", b"+",
             b"..", b"@@", b"q1"]
    for _ in range(30):
        data = b"".join(rng.choice(parts) for _ in range(rng.randint(1, 40000)))
        res = r.run("redact", data)
        check(len(res.stdout) == len(data), "redact keeps the length")
        want = redact_reference(data)
        if res.stdout != want:
            i = next(i for i in range(len(want)) if res.stdout[i] != want[i])
            lo, hi = max(0, i - 30), i + 30
            check(False, f"redact random: differs at {i}: {data[lo:hi]!r} -> "
                         f"{res.stdout[lo:hi]!r} want {want[lo:hi]!r}")


def strict_json_ok(line):
    """Python's verdict for one non-empty line, with RFC 8259's rules."""
    def no_constant(name):
        raise ValueError(name)
    try:
        json.loads(line.decode("utf-8"), parse_constant=no_constant)
        return True
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


def check_jsonl(r):
    rng = random.Random(4)

    def rand_string():
        chars = "ab\"\\/\b\f\n\r\t\u0001é€😀 "
        return "".join(rng.choice(chars) for _ in range(rng.randint(0, 12)))

    def rand_value(depth=0):
        k = rng.randrange(8 if depth < 6 else 5)
        if k == 0:
            return rng.choice([True, False, None])
        if k == 1:
            return rng.randint(-10**12, 10**12)
        if k == 2:
            return rng.uniform(-1e300, 1e300)
        if k in (3, 4):
            return rand_string()
        if k == 5:
            return [rand_value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rand_string(): rand_value(depth + 1) for _ in range(rng.randint(0, 4))}

    lines = [json.dumps(rand_value(), ensure_ascii=rng.random() < 0.5).encode()
             for _ in range(3000)]
    body = (b"\n".join(lines) + b"\n\n   \r\n"
            + b'{"a": [1, 2.5e-3, -0, true, false, null, "\\u00e9\\ud83d\\ude00"]}\r\n')
    body = body + b'"' + b"x" * 200000 + b'"'  # a long last line with no newline
    res = r.run("jsonl_validate", body, event="put")
    ok(res, "jsonl_validate valid body")
    check(res.stdout == body, "jsonl_validate passes the body through unchanged")

    bad = [
        (b'{"a":1}\n[1,2]\n{"a":}\n', 3, "expected a value"),
        (b"1\n2\n3 4\n", 3, "after the value"),
        (b'\n\n{"a" 1}\n', 3, "expected ':'"),
        (b"[01]\n", 1, "leading zero"),
        (b'"\\x"\n', 1, "invalid escape"),
        (b'"\\u12G4"\n', 1, "\\u escape"),
        (b'"a\tb"\n', 1, "control character"),
        (b'"\xff"\n', 1, "UTF-8"),
        (b'"\xed\xa0\x80"\n', 1, "UTF-8"),
        (b"[1,]\n", 1, "expected a value"),
        (b"{,}\n", 1, "string key"),
        (b"tru\n", 1, "inside a value"),
        (b'{"a":"b\n', 1, "inside a string"),
        (b"[1\n", 1, "inside an array or object"),
        (b"NaN\n", 1, "expected a value"),
        (b"[" * 513 + b"]" * 513 + b"\n", 1, "nesting"),
        (b"{}\n" * 100000 + b"[}\n", 100001, "expected a value"),
        (straddle(2, b"[1,\n"), 1, "inside an array or object"),  # leading spaces, then "[1," ends
        (b"\xef\xbb\xbf{}\n", 1, "expected a value"),  # a byte-order mark
    ]
    for data, line, reason in bad:
        res = r.run("jsonl_validate", data, event="put")
        got = res.reject or (None, "")
        check(got[0] == 400 and got[1].startswith(f"line {line}:") and reason in got[1],
              f"jsonl_validate {data[:30]!r}: got {res.reject}, code {res.code}, trap {res.trap}")
    res = r.run("jsonl_validate", b"[" * 512 + b"]" * 512 + b"\n", event="put")
    ok(res, "jsonl_validate depth 512 is fine")

    # Differential against Python's json on mutated lines.
    seeds = [b'{"a": [1, 2, {"b": null}], "c": "d\\u00e9"}', b"[-0.5e+10, true, false]",
             b'"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"', b"123", b' { } ', b'["\\"\\\\\\/"]']
    alphabet = b'{}[]:,"\\-+.0123456789eEtrufalsn \t\xc3\xa9\xff\x01u'
    for i in range(400):
        line = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            op, pos = rng.randrange(3), rng.randrange(len(line) + 1)
            if op == 0 and pos < len(line):
                del line[pos]
            elif op == 1:
                line.insert(pos, rng.choice(alphabet))
            elif pos < len(line):
                line[pos] = rng.choice(alphabet)
        line = bytes(line).replace(b"\n", b"")
        if not line.strip(b" \t\r"):
            continue
        res = r.run("jsonl_validate", line + b"\n", event="put")
        mine = res.code == 0 and res.reject is None
        check(mine == strict_json_ok(line),
              f"jsonl_validate differs from Python's json on {line!r}: {res.reject}")


def check_head(r):
    ten = b"".join(b"line %d\n" % i for i in range(1, 11))
    for params, data, want in [
        ({"n": "3"}, ten, b"line 1\nline 2\nline 3\n"),
        ({}, ten + b"more\n", ten),
        ({"n": "0"}, ten, b""),
        ({"n": "5"}, b"a\nb", b"a\nb"),
        ({"n": "2"}, b"", b""),
        ({"n": "3"}, straddle(1, b"\n\n\nnot this\n"), straddle(1, b"\n\n\n")),
        ({"n": "3"}, b"x" * 300000 + b"\n" + b"y\n" * 1000000, b"x" * 300000 + b"\ny\ny\n"),
    ]:
        res = r.run("head", data, params)
        ok(res, f"head {params}")
        check(res.stdout == want, f"head {params} len={len(data)}: got {res.stdout[:60]!r}...")
    res = r.run("head", b"a\n", {"n": "-1"})
    check(res.code == 2, "head: n=-1 must exit 2")


def check_tag_lines(r):
    for data, n in [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n", 2),
                    (b"x\n" * 200000, 200000), (straddle(1, b"\nz"), 2)]:
        res = r.run("tag_lines", data, event="put-done")
        ok(res, f"tag_lines len={len(data)}")
        check(res.metadata == [("lines", str(n))] and res.stdout == b"",
              f"tag_lines len={len(data)}: metadata {res.metadata}, stdout {res.stdout[:20]!r}")


def check_wat(r):
    data = random.Random(5).randbytes(3 << 20)
    res = r.run("identity", data)
    ok(res, "identity")
    check(res.stdout == data, "identity copies its input")
    ok(r.run("noop", data), "noop")
    res = r.run("hostile/trap")
    check(res.trap is not None and "unreachable" in res.trap, f"trap: {res.trap}")
    res = r.run("hostile/loop", fuel=10**8)
    check(res.trap is not None and "fuel" in res.trap, f"loop runs out of fuel: {res.trap}")
    res = r.run("hostile/slowstart", fuel=10**8)
    check(res.trap is not None and res.stdout == b"", f"slowstart writes nothing early: {res.trap}")
    res = r.run("hostile/grow", memory_limit=64 << 20)
    check(res.trap is not None and "unreachable" in res.trap, f"grow hits the limit: {res.trap}")
    res = r.run("hostile/badimport")
    check(res.trap is not None and "launch_missiles" in res.trap, f"badimport: {res.trap}")
    t = time.monotonic()
    res = r.run("hostile/flood", stdout_path="/dev/null")
    print(f"  flood: 1 GiB to /dev/null in {time.monotonic() - t:.1f}s, exit {res.code}")
    check(res.code == 0, f"flood: exit {res.code} {res.trap}")


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR (as given to build.sh)")
    r = Runner(sys.argv[1])
    for name, fn in [("wordcount", check_wordcount), ("gzip", check_gzip),
                     ("redact", check_redact), ("jsonl_validate", check_jsonl),
                     ("head", check_head), ("tag_lines", check_tag_lines), ("wat", check_wat)]:
        t = time.monotonic()
        before = len(FAILURES)
        fn(r)
        status = "ok" if len(FAILURES) == before else "FAILED"
        print(f"{name}: {status} ({time.monotonic() - t:.1f}s)")
    if FAILURES:
        sys.exit(f"{len(FAILURES)} checks failed")
    print("all checks passed")


if __name__ == "__main__":
    main()
