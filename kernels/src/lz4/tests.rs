// SPDX-License-Identifier: Apache-2.0
//! `lz4`: output that decompresses to the input (with `lz4_flex` and the `lz4` command line
//! tool), independent of chunking.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::Lz4;
use crate::contract::Kernel;
use crate::test_utils::{bind, run_cpu, run_cpu_pieces, try_bind};

fn decompress(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(frame)
        .read_to_end(&mut out)
        .expect("a valid LZ4 frame");
    out
}

/// Text with repeats (so it compresses) and some noise, `len` bytes.
fn sample(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_u32;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if x.is_multiple_of(4) {
            out.extend_from_slice(&x.to_le_bytes());
        } else {
            out.extend_from_slice(b"GET /bucket/key-0001 200 1024\n");
        }
    }
    out.truncate(len);
    out
}

#[test]
fn output_decompresses_to_the_input() {
    for params in [&[][..], &[("block", "64k"), ("checksum", "false")][..]] {
        let bound = bind(&Lz4, params);
        for len in [0, 1, 100, 65_536, 65_537, 300_000] {
            let input = sample(len);
            let frame = run_cpu(&*bound, &input);
            assert_eq!(decompress(&frame), input, "{len} bytes, {params:?}");
        }
    }
    let input = sample(1 << 20);
    assert!(run_cpu(&*bind(&Lz4, &[]), &input).len() < input.len() / 2);
}

#[test]
fn the_lz4_tool_decompresses_the_output() {
    let input = sample(5 << 20);
    let frame = run_cpu(&*bind(&Lz4, &[]), &input);
    let mut child = Command::new("lz4")
        .args(["-d", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the lz4 command line tool (Debian package lz4) is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&frame));
    let output = child.wait_with_output().expect("lz4 runs");
    writer.join().expect("writer").expect("frame written");
    assert!(
        output.status.success(),
        "lz4 -d failed: {:?}",
        output.status
    );
    assert_eq!(output.stdout, input);
}

#[test]
fn it_is_cpu_only_and_refuses_unknown_block_sizes() {
    assert!(!Lz4.info().opencl);
    assert!(bind(&Lz4, &[]).device().is_none());
    assert!(try_bind(&Lz4, &[("block", "8m")]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn output_is_independent_of_chunking(
        len in 0usize..200_000,
        sizes in prop::collection::vec(1usize..70_000, 1..6),
    ) {
        let input = sample(len);
        let bound = bind(&Lz4, &[("block", "64k")]);
        let whole = run_cpu(&*bound, &input);
        prop_assert_eq!(&run_cpu_pieces(&*bound, &input, &sizes), &whole);
        prop_assert_eq!(decompress(&whole), input);
    }
}
