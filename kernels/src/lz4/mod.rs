// SPDX-License-Identifier: Apache-2.0
//! `lz4`: the whole input compressed as one LZ4 frame (the format of the `lz4` command line
//! tool), CPU only.
//!
//! `lz4_flex`'s frame encoder compresses a block only once it holds a full block of input (the
//! size is fixed by the `block` parameter, never guessed from the first write), so the output
//! does not depend on how the input was cut into chunks. Blocks are independent, as with
//! `lz4 -BI`; the frame carries a content checksum (xxHash32) unless `checksum=false`.

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::Arc;

use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};

use crate::contract::{
    BoundKernel, CpuRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, ParamType, Params,
    Shape,
};
use crate::device::DeviceRun;

#[cfg(test)]
mod tests;

/// The `lz4` kernel.
#[derive(Debug)]
pub struct Lz4;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "block",
        ty: ParamType::Choice(&["64k", "256k", "1m", "4m"]),
        default: Some("4m"),
        doc: "the frame's block size: 64k, 256k, 1m or 4m (larger blocks compress better)",
    },
    ParamSpec {
        name: "checksum",
        ty: ParamType::Bool,
        default: Some("true"),
        doc: "end the frame with an xxHash32 of the content, checked by decompressors",
    },
];

static INFO: KernelInfo = KernelInfo {
    name: Cow::Borrowed("lz4"),
    summary: Cow::Borrowed("the whole input compressed as one LZ4 frame (CPU only)"),
    shape: Shape::Stream,
    params: Cow::Borrowed(PARAMS),
    cpu: true,
    opencl: false,
};

impl Kernel for Lz4 {
    fn info(&self) -> &KernelInfo {
        &INFO
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let block_size = match params.text("block")? {
            "64k" => BlockSize::Max64KB,
            "256k" => BlockSize::Max256KB,
            "1m" => BlockSize::Max1MB,
            "4m" => BlockSize::Max4MB,
            other => {
                return Err(KernelError::param(
                    "block",
                    format!("{other:?} is not one of 64k, 256k, 1m, 4m"),
                ));
            }
        };
        let frame = FrameInfo::new()
            .block_size(block_size)
            .block_mode(BlockMode::Independent)
            .content_checksum(params.bool("checksum")?);
        Ok(Arc::new(BoundLz4 { frame }))
    }
}

#[derive(Debug)]
struct BoundLz4 {
    frame: FrameInfo,
}

impl BoundKernel for BoundLz4 {
    fn framing(&self) -> Framing {
        Framing::Bytes
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(Lz4Run {
            encoder: Some(FrameEncoder::with_frame_info(
                self.frame.clone(),
                Vec::new(),
            )),
        }))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        None
    }
}

/// One compression job: the encoder writes into its own buffer, which is drained into the
/// job's output after every chunk.
struct Lz4Run {
    /// `None` once finished.
    encoder: Option<FrameEncoder<Vec<u8>>>,
}

fn compress_error(e: impl std::fmt::Display) -> KernelError {
    KernelError::Input(format!("LZ4 compression failed: {e}"))
}

impl CpuRun for Lz4Run {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        let encoder = self
            .encoder
            .as_mut()
            .ok_or_else(|| compress_error("input after the end of the frame"))?;
        encoder.write_all(chunk).map_err(compress_error)?;
        let compressed = encoder.get_mut();
        out.extend_from_slice(compressed);
        compressed.clear();
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        if let Some(encoder) = self.encoder.take() {
            out.extend_from_slice(&encoder.finish().map_err(compress_error)?);
        }
        Ok(())
    }
}
