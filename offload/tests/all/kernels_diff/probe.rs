// SPDX-License-Identifier: Apache-2.0
//! Test-only kernels that prove the executor and the harness on every launch kind before the
//! built-in kernels exist: `probe-count-byte` (Fixed: one u64 per block, summed on the host)
//! and `probe-numbered-grep` (CountEmit with SCAN: lines holding a needle, prefixed by their
//! line number in the whole input, so the line count carried across chunks in the constants,
//! the per-block scan and the output offsets must all be right).

use std::borrow::Cow;
use std::sync::Arc;

use proptest::prelude::*;
use quarry_kernels::{
    BoundKernel, ChunkPlan, ClProgram, CpuRun, DeviceRun, Framing, Kernel, KernelError, KernelInfo,
    Launch, ParamSpec, ParamType, Params, Shape,
};

use super::assert_same_for;

/// Work-item block size of the device protocol.
const BLOCK: usize = 4096;

static PROBE_PROGRAM: ClProgram = ClProgram {
    name: "probe",
    source: PROBE_CL,
    options: "",
};

const PROBE_CL: &str = r#"
#define BLOCK 4096UL

ulong rd64(__global const uchar *p) {
    ulong v = 0;
    for (int b = 7; b >= 0; b--) v = (v << 8) | p[b];
    return v;
}

uint rd32(__global const uchar *p) {
    uint v = 0;
    for (int b = 3; b >= 0; b--) v = (v << 8) | p[b];
    return v;
}

__kernel void probe_count_byte(__global const uchar *in, const ulong len,
                               __global const uchar *consts, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong s = i * BLOCK;
    ulong e = min(s + BLOCK, len);
    uchar want = consts[0];
    ulong n = 0;
    for (ulong p = s; p < e; p++) n += (in[p] == want);
    for (int b = 0; b < 8; b++) out[i * 8 + b] = (uchar)(n >> (8 * b));
}

ulong first_start(__global const uchar *in, ulong len, ulong i) {
    ulong s = i * BLOCK;
    ulong e = min(s + BLOCK, len);
    if (s == 0) return 0;
    for (ulong p = s; p < e; p++) if (in[p - 1] == '\n') return p;
    return e;
}

ulong line_end(__global const uchar *in, ulong len, ulong p) {
    while (p < len && in[p] != '\n') p++;
    return p < len ? p + 1 : len;
}

int contains(__global const uchar *in, ulong s, ulong e, __global const uchar *needle, uint n) {
    if (e - s < n) return 0;
    for (ulong p = s; p + n <= e; p++) {
        uint k = 0;
        while (k < n && in[p + k] == needle[k]) k++;
        if (k == n) return 1;
    }
    return 0;
}

uint digits(ulong v) {
    uint d = 1;
    while (v >= 10) { v /= 10; d++; }
    return d;
}

__kernel void probe_scan(__global const uchar *in, const ulong len,
                         __global const uchar *consts, __global uint *scan) {
    ulong i = get_global_id(0);
    ulong s = i * BLOCK;
    ulong e = min(s + BLOCK, len);
    uint n = 0;
    for (ulong p = s; p < e; p++) n += (p == 0 || in[p - 1] == '\n');
    scan[i] = n;
}

__kernel void probe_count(__global const uchar *in, const ulong len,
                          __global const uchar *consts, __global const uint *prefix,
                          __global uint *counts) {
    ulong i = get_global_id(0);
    ulong e = min(i * BLOCK + BLOCK, len);
    ulong idx = rd64(consts) + prefix[i];
    uint n = rd32(consts + 8);
    uint total = 0;
    for (ulong p = first_start(in, len, i); p < e; idx++) {
        ulong le = line_end(in, len, p);
        if (contains(in, p, le, consts + 12, n)) total += digits(idx) + 1 + (uint)(le - p);
        p = le;
    }
    counts[i] = total;
}

__kernel void probe_emit(__global const uchar *in, const ulong len,
                         __global const uchar *consts, __global const uint *prefix,
                         __global const uint *offsets, __global uchar *out) {
    ulong i = get_global_id(0);
    ulong e = min(i * BLOCK + BLOCK, len);
    ulong idx = rd64(consts) + prefix[i];
    uint n = rd32(consts + 8);
    __global uchar *o = out + offsets[i];
    for (ulong p = first_start(in, len, i); p < e; idx++) {
        ulong le = line_end(in, len, p);
        if (contains(in, p, le, consts + 12, n)) {
            uint d = digits(idx);
            ulong v = idx;
            for (uint k = d; k > 0; k--) { o[k - 1] = (uchar)('0' + v % 10); v /= 10; }
            o += d;
            *o++ = ':';
            for (ulong q = p; q < le; q++) *o++ = in[q];
        }
        p = le;
    }
}
"#;

/// Counts occurrences of one byte (Fixed launch, reduce on the host).
#[derive(Debug)]
pub(crate) struct ProbeCountByte {
    info: KernelInfo,
}

const COUNT_BYTE_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "byte",
    ty: ParamType::UInt { min: 0, max: 255 },
    default: Some("10"),
    doc: "the byte value to count",
}];

impl ProbeCountByte {
    pub(crate) fn new() -> Self {
        Self {
            info: KernelInfo {
                name: Cow::Borrowed("probe-count-byte"),
                summary: Cow::Borrowed("counts one byte value"),
                shape: Shape::Reduce,
                params: Cow::Borrowed(COUNT_BYTE_PARAMS),
                cpu: true,
                opencl: true,
            },
        }
    }
}

impl Kernel for ProbeCountByte {
    fn info(&self) -> &KernelInfo {
        &self.info
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let byte = u8::try_from(params.uint("byte")?)
            .map_err(|_| KernelError::param("byte", "must be at most 255"))?;
        Ok(Arc::new(CountByte { byte }))
    }
}

#[derive(Debug, Clone, Copy)]
struct CountByte {
    byte: u8,
}

impl BoundKernel for CountByte {
    fn framing(&self) -> Framing {
        Framing::Bytes
    }
    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(CountByteRun {
            byte: self.byte,
            total: 0,
        }))
    }
    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(CountByteRun {
            byte: self.byte,
            total: 0,
        }))
    }
}

struct CountByteRun {
    byte: u8,
    total: u64,
}

impl CpuRun for CountByteRun {
    fn feed(&mut self, chunk: &[u8], _out: &mut Vec<u8>) -> Result<(), KernelError> {
        self.total += chunk.iter().filter(|&&b| b == self.byte).count() as u64;
        Ok(())
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        out.extend_from_slice(format!("{}\n", self.total).as_bytes());
        Ok(())
    }
}

impl DeviceRun for CountByteRun {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        Ok(ChunkPlan {
            program: &PROBE_PROGRAM,
            input: 0..chunk.len(),
            consts: vec![self.byte],
            launch: Launch::Fixed {
                entry: "probe_count_byte",
                items: chunk.len().div_ceil(BLOCK),
                out_per_item: 8,
            },
        })
    }
    fn accept(
        &mut self,
        chunk: &[u8],
        device_out: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        if device_out.len() != chunk.len().div_ceil(BLOCK) * 8 {
            return Err(KernelError::Input(format!(
                "device output of {} bytes for a chunk of {}",
                device_out.len(),
                chunk.len()
            )));
        }
        for v in device_out.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(v);
            self.total += u64::from_le_bytes(b);
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        CpuRun::finish(self, out)
    }
}

/// Lines holding a needle, numbered (CountEmit with SCAN).
#[derive(Debug)]
pub(crate) struct ProbeNumberedGrep {
    info: KernelInfo,
}

const GREP_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "needle",
    ty: ParamType::Text,
    default: None,
    doc: "the bytes a line must contain",
}];

impl ProbeNumberedGrep {
    pub(crate) fn new() -> Self {
        Self {
            info: KernelInfo {
                name: Cow::Borrowed("probe-numbered-grep"),
                summary: Cow::Borrowed("lines holding a needle, with their line numbers"),
                shape: Shape::Filter,
                params: Cow::Borrowed(GREP_PARAMS),
                cpu: true,
                opencl: true,
            },
        }
    }
}

impl Kernel for ProbeNumberedGrep {
    fn info(&self) -> &KernelInfo {
        &self.info
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let needle = params.text("needle")?.as_bytes().to_vec();
        if needle.is_empty() {
            return Err(KernelError::param("needle", "must not be empty"));
        }
        Ok(Arc::new(NumberedGrep { needle }))
    }
}

#[derive(Debug, Clone)]
struct NumberedGrep {
    needle: Vec<u8>,
}

impl BoundKernel for NumberedGrep {
    fn framing(&self) -> Framing {
        Framing::Lines
    }
    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(NumberedGrepRun {
            needle: self.needle.clone(),
            lines: 0,
        }))
    }
    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(NumberedGrepRun {
            needle: self.needle.clone(),
            lines: 0,
        }))
    }
}

struct NumberedGrepRun {
    needle: Vec<u8>,
    /// Lines in the chunks fed or planned so far.
    lines: u64,
}

impl CpuRun for NumberedGrepRun {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        for line in chunk.split_inclusive(|&b| b == b'\n') {
            if line.windows(self.needle.len()).any(|w| w == self.needle) {
                out.extend_from_slice(format!("{}:", self.lines).as_bytes());
                out.extend_from_slice(line);
            }
            self.lines += 1;
        }
        Ok(())
    }
    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), KernelError> {
        Ok(())
    }
}

impl DeviceRun for NumberedGrepRun {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        let mut consts = Vec::with_capacity(12 + self.needle.len());
        consts.extend_from_slice(&self.lines.to_le_bytes());
        let needle_len = u32::try_from(self.needle.len())
            .map_err(|_| KernelError::param("needle", "must be shorter than 4 GiB"))?;
        consts.extend_from_slice(&needle_len.to_le_bytes());
        consts.extend_from_slice(&self.needle);
        self.lines += chunk.split_inclusive(|&b| b == b'\n').count() as u64;
        Ok(ChunkPlan {
            program: &PROBE_PROGRAM,
            input: 0..chunk.len(),
            consts,
            launch: Launch::CountEmit {
                scan: Some("probe_scan"),
                count: "probe_count",
                emit: "probe_emit",
                items: chunk.len().div_ceil(BLOCK),
            },
        })
    }
    fn accept(
        &mut self,
        _chunk: &[u8],
        device_out: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        out.extend_from_slice(device_out);
        Ok(())
    }
    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), KernelError> {
        Ok(())
    }
}

/// Text lines of varied lengths: some hold `needle`, some are longer than a block, some hold
/// multi-byte UTF-8; the last may lack its newline.
fn sample(lines: usize, seed: u64, terminated: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut x = seed | 1;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = match x % 10 {
            0 => 5000 + (x >> 8) as usize % 9000,
            1 => 0,
            _ => (x >> 8) as usize % 120,
        };
        let mut line = format!("{i} ");
        while line.len() < len {
            line.push_str(match (x >> 20) % 4 {
                0 => "needle ",
                1 => "héllo ",
                2 => "😀 ",
                _ => "plain text ",
            });
            x = x.rotate_left(7);
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    if !terminated {
        out.extend_from_slice("tail with needle and no newline ✓".as_bytes());
    }
    out
}

#[test]
fn fixed_launch_counts_bytes_like_the_cpu() {
    let k = ProbeCountByte::new();
    assert_same_for(&k, &[], b"");
    assert_same_for(&k, &[], b"\n");
    assert_same_for(&k, &[], &sample(300, 7, false));
    assert_same_for(&k, &[("byte", "32")], &sample(300, 9, true));
}

#[test]
fn count_emit_with_scan_numbers_lines_like_the_cpu() {
    let k = ProbeNumberedGrep::new();
    let p = &[("needle", "needle")];
    assert_same_for(&k, p, b"");
    assert_same_for(&k, p, b"n");
    assert_same_for(&k, p, b"needle");
    assert_same_for(&k, p, b"\n\n\nneedle\n\n");
    assert_same_for(&k, p, &sample(400, 3, true));
    assert_same_for(&k, p, &sample(400, 5, false));
    // One line far longer than the small device chunk and than a 4095-byte piece.
    let mut long = "needle".repeat(5000).into_bytes();
    long.extend_from_slice(b"\nshort needle\n");
    assert_same_for(&k, p, &long);
    assert_same_for(&k, &[("needle", "😀")], &sample(200, 11, false));
}

#[test]
fn a_kernel_that_is_not_built_in_is_named_in_the_failure() {
    let err = std::panic::catch_unwind(|| {
        super::assert_same_on_every_device("no-such-kernel", &[], b"x")
    })
    .expect_err("an unknown kernel fails");
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("no-such-kernel"), "{message}");
}

#[test]
fn a_difference_is_described_with_its_place() {
    let text = super::describe_difference(b"abc\ndef\n", b"abc\ndxf\n");
    assert!(text.contains("byte 5"), "{text}");
    assert!(text.contains("line 2"), "{text}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn any_text_gives_the_same_bytes(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("needle".to_owned()),
                Just(String::new()),
                "[a-z é😀]{0,40}",
                "[ne]{4000,4200}",
            ],
            0..40,
        ),
        terminated in any::<bool>(),
    ) {
        let mut input = lines.join("\n").into_bytes();
        if terminated && !input.is_empty() {
            input.push(b'\n');
        }
        assert_same_for(&ProbeNumberedGrep::new(), &[("needle", "ne")], &input);
        assert_same_for(&ProbeCountByte::new(), &[("byte", "101")], &input);
    }
}
