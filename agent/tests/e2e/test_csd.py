# SPDX-License-Identifier: Apache-2.0
"""A bucket on a simulated computational-storage drive, end to end through S3.

The node declares a SmartSSD-like CSD (`[[devices]]`, profile `smartssd`) and places one bucket
on it (`[[placement]]`). A kernel GET on that bucket runs on the drive (a pushdown: only the
result crosses its link), with the real CPU implementation's bytes and the modelled device time
in `x-quarry-device-time`; the same GET on a bucket not on the drive stays on the host CPU; a
request may still send it to the drive with `x-quarry-backend-class: require:csd`.
"""

from __future__ import annotations

import random
import re

import pytest

from test_functions import Node, assert_function_error  # noqa: F401 (fixtures)

pytestmark = pytest.mark.quarryd_only

CSD_BUCKET = "csd-logs"

CSD_CONFIG = f"""\
# quarryd config for the simulated-CSD e2e tests
[[devices]]
id = "csd0"
kind = "csd"
profile = "smartssd"

[[placement]]
bucket = "{CSD_BUCKET}"
device = "csd0"
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory, aws_env_dir):
    n = Node(tmp_path_factory.mktemp("csdnode"), CSD_CONFIG)
    n.start()
    n.s3.create_bucket(Bucket=CSD_BUCKET)
    yield n
    n.close()


@pytest.fixture
def host_bucket(node):
    name = node.new_bucket("host")
    yield name
    node.drop_bucket(name)


def devices(node) -> list[dict]:
    r = node.admin("GET", "/v1/devices")
    assert r.status_code == 200, r.text
    return r.json()


def log_body(lines: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        level = "ERROR" if rng.random() < 0.02 else rng.choice(["INFO", "DEBUG", "WARN"])
        out.append(f"2026-11-23T18:{i % 60:02d}:{i % 59:02d}Z {level} req={i} path=/v1/items/{rng.randint(1, 999)}")
    return ("\n".join(out) + "\n").encode()


def device_time_us(r) -> int:
    value = r.headers.get("x-quarry-device-time")
    assert value is not None and re.fullmatch(r"\d+", value), r.headers
    return int(value)


def test_the_csd_is_listed_with_its_profile(node):
    by_id = {d["id"]: d for d in devices(node)}
    assert "csd0" in by_id, by_id.keys()
    csd = by_id["csd0"]
    assert csd["class"] == "csd", csd
    assert "smartssd" in csd["description"] and "simulated" in csd["description"], csd
    out = node.cli("devices").stdout.decode()
    assert "csd0" in out and "smartssd" in out, out


def test_grep_on_a_csd_bucket_runs_on_the_drive(node, host_bucket):
    body = log_body(20000, 7)
    want = b"".join(l for l in body.splitlines(keepends=True) if b"ERROR" in l)
    node.s3.put_object(Bucket=CSD_BUCKET, Key="app.log", Body=body)

    r = node.invoke(CSD_BUCKET, "app.log", "grep", {"pattern": "ERROR"})
    assert r.status_code == 200, r.text
    assert r.content == want
    assert r.headers.get("x-quarry-backend") == "csd0", r.headers
    assert device_time_us(r) > 0

    # The CPU's run of the same request gives the same bytes.
    cpu = node.invoke(CSD_BUCKET, "app.log", "grep", {"pattern": "ERROR"},
                      headers={"x-quarry-backend-class": "backend:native"})
    assert cpu.status_code == 200, cpu.text
    assert cpu.content == r.content
    assert cpu.headers.get("x-quarry-backend") == "native", cpu.headers
    assert "x-quarry-device-time" not in cpu.headers, cpu.headers

    # A count is a pushdown too.
    count = want.count(b"\n")
    r = node.invoke(CSD_BUCKET, "app.log", "grep", {"pattern": "ERROR", "mode": "count"})
    assert (r.status_code, r.content) == (200, f"{count}\n".encode()), r.text
    assert r.headers.get("x-quarry-backend") == "csd0", r.headers


def test_the_same_get_off_the_drive_runs_on_the_cpu(node, host_bucket):
    body = log_body(20000, 8)
    want = b"".join(l for l in body.splitlines(keepends=True) if b"ERROR" in l)
    node.s3.put_object(Bucket=host_bucket, Key="app.log", Body=body)
    cpu_ids = {d["id"] for d in devices(node) if d["class"] == "cpu"}

    r = node.invoke(host_bucket, "app.log", "grep", {"pattern": "ERROR"})
    assert r.status_code == 200, r.text
    assert r.content == want
    assert r.headers.get("x-quarry-backend") in cpu_ids, r.headers
    assert "x-quarry-device-time" not in r.headers, r.headers

    # Asked for, the drive takes it (the whole object crosses its link in the model).
    r = node.invoke(host_bucket, "app.log", "grep", {"pattern": "ERROR"},
                    headers={"x-quarry-backend-class": "require:csd"})
    assert r.status_code == 200, r.text
    assert r.content == want
    assert r.headers.get("x-quarry-backend") == "csd0", r.headers
    assert device_time_us(r) > 0


def test_kernels_the_drive_has_no_program_for_stay_on_the_host(node):
    body = b'{"level":"error","id":1}\n{"level":"info","id":2}\n'
    node.s3.put_object(Bucket=CSD_BUCKET, Key="events.jsonl", Body=body)
    params = {"field": "level", "op": "eq", "value": "error"}
    r = node.invoke(CSD_BUCKET, "events.jsonl", "jsonl-filter", params)
    assert r.status_code == 200, r.text
    assert r.headers.get("x-quarry-backend") != "csd0", r.headers
    r = node.invoke(CSD_BUCKET, "events.jsonl", "jsonl-filter", params,
                    headers={"x-quarry-backend-class": "require:csd"})
    assert_function_error(r, 400, "InvalidRequest", "csd")


def test_device_time_is_in_the_metrics(node):
    node.s3.put_object(Bucket=CSD_BUCKET, Key="m.log", Body=log_body(500, 9))
    r = node.invoke(CSD_BUCKET, "m.log", "grep", {"pattern": "ERROR", "mode": "count"})
    assert r.headers.get("x-quarry-backend") == "csd0", r.headers
    metrics = node.admin("GET", "/metrics").text
    line = next((l for l in metrics.splitlines()
                 if l.startswith("quarry_offload_device_seconds_total{") and 'backend="csd0"' in l), None)
    assert line is not None, metrics
    assert float(line.split()[-1]) > 0, line


# --------------------------------------------------------------------------- eBPF programs

REPO = __import__("pathlib").Path(__file__).resolve().parents[3]

COUNT_BYTE_C = r"""
#include "quarry_bpf.h"

struct state { __u64 ready, byte, count; };

QUARRY_CHUNK int count_chunk(struct quarry_ctx *ctx)
{
	struct state *st = QUARRY_PTR(struct state *, ctx->state);
	const __u8 *data = QUARRY_PTR(const __u8 *, ctx->data);

	if (!st->ready) {
		char b = 0;
		if (quarry_param("byte", 4, &b, 1) != 1)
			return 1;
		st->byte = (__u8)b;
		st->ready = 1;
	}
	for (__u64 i = 0; i < ctx->len; i++)
		st->count += data[i] == st->byte;
	return 0;
}

QUARRY_FINISH int count_finish(struct quarry_ctx *ctx)
{
	struct state *st = QUARRY_PTR(struct state *, ctx->state);
	char nl = '\n';

	quarry_emit_u64(st->count);
	quarry_emit(&nl, 1);
	return 0;
}
"""


def test_a_builtin_ebpf_program_runs_on_the_drive(node):
    body = log_body(5000, 11)
    node.s3.put_object(Bucket=CSD_BUCKET, Key="ebpf.log", Body=body)
    r = node.admin("PUT", "/v1/functions/ecount?ebpf=grep-count&param=pattern%3DERROR")
    assert r.status_code in (200, 201), r.text
    want = sum(1 for l in body.splitlines() if b"ERROR" in l)
    r = node.invoke(CSD_BUCKET, "ebpf.log", "ecount")
    assert (r.status_code, r.content) == (200, f"{want}\n".encode()), r.text
    assert r.headers.get("x-quarry-backend") == "csd0", r.headers
    assert device_time_us(r) > 0


def test_a_registered_ebpf_program_runs_on_the_drive(node, tmp_path):
    import subprocess
    src = tmp_path / "count.c"
    src.write_text(COUNT_BYTE_C)
    obj = tmp_path / "count.o"
    subprocess.run(["clang", "-target", "bpf", "-O2", "-I", str(REPO / "ebpf/include"),
                    "-c", str(src), "-o", str(obj)], check=True)
    out = node.cli("ebpf", "register", "count-byte", str(obj), "--shape", "reduce",
                   "--framing", "bytes", "--param", "byte").stdout.decode()
    assert "count-byte" in out, out
    node.cli("fn", "deploy", "commas", "--ebpf", "count-byte", "--param", "byte=,")

    body = b"a,b,c\n" * 3000 + b",,\n"
    node.s3.put_object(Bucket=CSD_BUCKET, Key="rows.csv", Body=body)
    r = node.invoke(CSD_BUCKET, "rows.csv", "commas")
    assert (r.status_code, r.content) == (200, f"{body.count(b',')}\n".encode()), r.text
    assert r.headers.get("x-quarry-backend") == "csd0", r.headers

    # In use: it cannot be removed. Not an ELF: refused with the loader's reason.
    r = node.admin("DELETE", "/v1/ebpf/count-byte")
    assert r.status_code == 409 and "commas" in r.text, r.text
    r = node.admin("PUT", "/v1/ebpf/junk?shape=reduce&framing=bytes", data=b"#!/bin/sh\n")
    assert r.status_code == 400 and "ELF" in r.text, r.text
