// SPDX-License-Identifier: Apache-2.0
//! `reed-solomon`: the parity of a Reed-Solomon erasure code over GF(2^8), stripe by stripe.
//!
//! The input is cut into stripes of `data` (k) units of `unit` bytes (the last stripe is
//! zero-padded); the output is, per stripe, its `parity` (m) parity units concatenated, so
//! that any k of the k + m units of a stripe rebuild it. CPU: the `reed-solomon-erasure`
//! crate (`galois_8`, the Backblaze/klauspost field and matrix). Device: the same coefficient
//! matrix, read off the CPU codec at bind by encoding unit vectors, and GF(2^8) products by
//! log/exp tables (`gf`); one work-item per 16 bytes of one parity unit.

mod gf;

use std::borrow::Cow;
use std::sync::Arc;

use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::blocks::push_u32;
use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType, Params,
    Shape,
};
use crate::device::{ChunkPlan, ClProgram, DeviceRun, Launch};

#[cfg(test)]
mod tests;

/// The `reed-solomon` kernel.
#[derive(Debug)]
pub struct ReedSolomonParity;

/// The most data units per stripe.
const MAX_DATA: usize = 32;
/// The most parity units per stripe.
const MAX_PARITY: usize = 16;
/// Unit sizes are multiples of this.
const UNIT_ALIGN: u64 = 64;
/// Bytes of a parity unit one work-item computes.
const ITEM_BYTES: usize = 16;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "data",
        ty: ParamType::UInt { min: 1, max: 32 },
        default: Some("4"),
        doc: "data units per stripe (k)",
    },
    ParamSpec {
        name: "parity",
        ty: ParamType::UInt { min: 1, max: 16 },
        default: Some("2"),
        doc: "parity units per stripe (m): any k of the k + m units rebuild the stripe",
    },
    ParamSpec {
        name: "unit",
        ty: ParamType::UInt {
            min: 64,
            max: 1 << 20,
        },
        default: Some("4096"),
        doc: "bytes per unit, a multiple of 64 (a stripe is data * unit bytes)",
    },
];

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("reed-solomon"),
    summary: Cow::Borrowed("Reed-Solomon parity units of each stripe of data units"),
    shape: Shape::Map,
    params: Cow::Borrowed(PARAMS),
    cpu: true,
    opencl: true,
};

static PROGRAM: ClProgram = ClProgram {
    name: "builtin-reed-solomon",
    source: include_str!("reed_solomon.cl"),
    options: "",
};

impl Kernel for ReedSolomonParity {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let unit = params.uint("unit")?;
        if unit % UNIT_ALIGN != 0 {
            return Err(KernelError::param(
                "unit",
                format!(
                    "{unit} is not a multiple of {UNIT_ALIGN}; try {}",
                    unit.next_multiple_of(UNIT_ALIGN)
                ),
            ));
        }
        let k = to_usize("data", params.uint("data")?, MAX_DATA)?;
        let m = to_usize("parity", params.uint("parity")?, MAX_PARITY)?;
        let unit = to_usize("unit", unit, 1 << 20)?;
        let codec = ReedSolomon::new(k, m).map_err(|e| {
            KernelError::param(
                "data",
                format!("no code with {k} data and {m} parity units: {e:?}"),
            )
        })?;
        let consts = device_consts(&codec, k, m, unit)?;
        Ok(Arc::new(BoundReedSolomon {
            codec: Arc::new(codec),
            k,
            m,
            unit,
            consts: Arc::new(consts),
        }))
    }
}

/// A checked integer parameter as a `usize` no larger than `max`.
fn to_usize(name: &str, value: u64, max: usize) -> Result<usize, KernelError> {
    usize::try_from(value)
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(|| KernelError::param(name, format!("{value} is larger than {max}")))
}

/// The coefficient of data unit `j` in parity unit `p`, for every `p` and `j` (row-major),
/// read off the codec by encoding the unit vectors.
fn coefficients(codec: &ReedSolomon, k: usize, m: usize) -> Result<Vec<u8>, KernelError> {
    let mut matrix = vec![0; m * k];
    for j in 0..k {
        let data: Vec<[u8; 1]> = (0..k).map(|d| [u8::from(d == j)]).collect();
        let mut parity = vec![[0_u8; 1]; m];
        codec.encode_sep(&data, &mut parity).map_err(encode_error)?;
        for (p, unit) in parity.iter().enumerate() {
            matrix[p * k + j] = unit[0];
        }
    }
    Ok(matrix)
}

/// `consts` of the device program: u32 k, m, unit, 0; the log table (256 bytes); the exp
/// table (512 bytes); then the logs of the coefficients, m rows of k ([`gf::LOG_ZERO`] for a
/// zero coefficient). See `reed_solomon.cl`.
fn device_consts(
    codec: &ReedSolomon,
    k: usize,
    m: usize,
    unit: usize,
) -> Result<Vec<u8>, KernelError> {
    let tables = gf::Tables::new();
    let mut consts = Vec::with_capacity(16 + 256 + 512 + m * k);
    for value in [k, m, unit, 0] {
        push_u32(&mut consts, value)?;
    }
    consts.extend_from_slice(&tables.log);
    consts.extend_from_slice(&tables.exp);
    consts.extend(coefficients(codec, k, m)?.iter().map(|&c| tables.log_of(c)));
    Ok(consts)
}

fn encode_error(e: reed_solomon_erasure::Error) -> KernelError {
    KernelError::Input(format!("the Reed-Solomon encoder refused a stripe: {e:?}"))
}

#[derive(Debug)]
struct BoundReedSolomon {
    codec: Arc<ReedSolomon>,
    k: usize,
    m: usize,
    unit: usize,
    consts: Arc<Vec<u8>>,
}

impl BoundReedSolomon {
    fn stripe(&self) -> usize {
        self.k * self.unit
    }
}

impl BoundKernel for BoundReedSolomon {
    fn framing(&self) -> Framing {
        Framing::Records {
            size: self.stripe(),
        }
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(ParityCpu {
            codec: Arc::clone(&self.codec),
            k: self.k,
            m: self.m,
            unit: self.unit,
            padded: Vec::new(),
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(ParityDevice {
            consts: Arc::clone(&self.consts),
            m: self.m,
            stripe: self.stripe(),
            unit: self.unit,
        }))
    }
}

// === CPU ===

struct ParityCpu {
    codec: Arc<ReedSolomon>,
    k: usize,
    m: usize,
    unit: usize,
    /// The last, short stripe, zero-padded.
    padded: Vec<u8>,
}

impl ParityCpu {
    /// Appends the parity units of one whole stripe.
    fn encode(&self, stripe: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        let mut data: [&[u8]; MAX_DATA] = [&[]; MAX_DATA];
        for (slot, unit) in data.iter_mut().zip(stripe.chunks_exact(self.unit)) {
            *slot = unit;
        }
        let base = out.len();
        out.resize(base + self.m * self.unit, 0);
        let mut parity: [&mut [u8]; MAX_PARITY] = Default::default();
        for (slot, unit) in parity
            .iter_mut()
            .zip(out[base..].chunks_exact_mut(self.unit))
        {
            *slot = unit;
        }
        self.codec
            .encode_sep(&data[..self.k], &mut parity[..self.m])
            .map_err(encode_error)
    }
}

impl CpuRun for ParityCpu {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        let stripe = self.k * self.unit;
        let mut stripes = chunk.chunks_exact(stripe);
        for whole in &mut stripes {
            self.encode(whole, out)?;
        }
        let rest = stripes.remainder();
        if !rest.is_empty() {
            let mut padded = std::mem::take(&mut self.padded);
            padded.clear();
            padded.extend_from_slice(rest);
            padded.resize(stripe, 0);
            let result = self.encode(&padded, out);
            self.padded = padded;
            result?;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), KernelError> {
        Ok(())
    }
}

// === device ===

struct ParityDevice {
    consts: Arc<Vec<u8>>,
    m: usize,
    stripe: usize,
    unit: usize,
}

impl ParityDevice {
    fn parity_bytes(&self, chunk_len: usize) -> usize {
        chunk_len.div_ceil(self.stripe) * self.m * self.unit
    }
}

impl DeviceRun for ParityDevice {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        Ok(ChunkPlan {
            program: &PROGRAM,
            input: 0..chunk.len(),
            consts: self.consts.to_vec(),
            launch: Launch::Fixed {
                entry: "rs_parity",
                items: self.parity_bytes(chunk.len()) / ITEM_BYTES,
                out_per_item: ITEM_BYTES,
            },
        })
    }

    fn accept(
        &mut self,
        chunk: &[u8],
        device_out: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        let expected = self.parity_bytes(chunk.len());
        if device_out.len() != expected {
            return Err(KernelError::Input(format!(
                "the device returned {} parity bytes where the chunk has {expected}",
                device_out.len()
            )));
        }
        out.extend_from_slice(device_out);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), KernelError> {
        Ok(())
    }
}
