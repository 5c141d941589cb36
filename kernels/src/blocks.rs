// SPDX-License-Identifier: Apache-2.0
//! What the built-in kernels' device variants share: the 4096-byte block decomposition
//! (work-item `i` owns the records that START in block `i`), little-endian packing of
//! `consts` and of device results, and the host side of a line filter (`CountEmit`: the
//! device writes the kept lines, the host passes them on).

use crate::contract::KernelError;
use crate::device::{ChunkPlan, ClProgram, DeviceRun, Launch};

/// Bytes per work-item block.
pub(crate) const BLOCK_BYTES: usize = 4096;

/// Work-items for a chunk of `len` bytes: one per block, the last one possibly short.
pub(crate) fn block_items(len: usize) -> usize {
    len.div_ceil(BLOCK_BYTES)
}

/// Appends `value` as 4 little-endian bytes (the layout every `.cl` source reads).
pub(crate) fn push_u32(consts: &mut Vec<u8>, value: usize) -> Result<(), KernelError> {
    let value = u32::try_from(value).map_err(|_| {
        KernelError::Input(format!(
            "a parameter of {value} bytes does not fit the device's 32-bit length field"
        ))
    })?;
    consts.extend_from_slice(&value.to_le_bytes());
    Ok(())
}

/// Splits a device result into little-endian `u32`s, refusing a length that is not
/// `items * 4 * per_item` (an executor bug, never user input).
pub(crate) fn device_words(
    device_out: &[u8],
    items: usize,
    per_item: usize,
) -> Result<impl Iterator<Item = u32> + '_, KernelError> {
    let expected = items * per_item * 4;
    if device_out.len() != expected {
        return Err(KernelError::Input(format!(
            "the device returned {} bytes where {items} work-items write {expected}",
            device_out.len()
        )));
    }
    Ok(device_out
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
}

/// The host side of a line filter on a device: every chunk runs `count` then `emit` over
/// its blocks, and the device output (the kept lines, in order) is the job output.
#[derive(Debug)]
pub(crate) struct LineFilterDeviceRun {
    program: &'static ClProgram,
    count: &'static str,
    emit: &'static str,
    consts: Vec<u8>,
}

impl LineFilterDeviceRun {
    /// A run of `program`'s `count`/`emit` entry points with the given `consts`.
    pub(crate) fn new(
        program: &'static ClProgram,
        count: &'static str,
        emit: &'static str,
        consts: Vec<u8>,
    ) -> Self {
        Self {
            program,
            count,
            emit,
            consts,
        }
    }
}

impl DeviceRun for LineFilterDeviceRun {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        Ok(ChunkPlan {
            program: self.program,
            input: 0..chunk.len(),
            consts: self.consts.clone(),
            launch: Launch::CountEmit {
                scan: None,
                count: self.count,
                emit: self.emit,
                items: block_items(chunk.len()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_cover_every_byte_once() {
        assert_eq!(block_items(0), 0);
        assert_eq!(block_items(1), 1);
        assert_eq!(block_items(BLOCK_BYTES), 1);
        assert_eq!(block_items(BLOCK_BYTES + 1), 2);
    }

    #[test]
    fn device_words_refuse_a_wrong_length() {
        assert!(device_words(&[0; 8], 2, 1).is_ok());
        assert!(device_words(&[0; 7], 2, 1).is_err());
        let words: Vec<u32> = device_words(&[1, 0, 0, 0, 0, 1, 0, 0], 2, 1)
            .expect("right length")
            .collect();
        assert_eq!(words, vec![1, 256]);
    }
}
