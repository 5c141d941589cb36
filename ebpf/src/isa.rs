// SPDX-License-Identifier: Apache-2.0
//! The eBPF instruction set as the VM decodes it: instruction classes, operation codes and the
//! 8-byte instruction layout (RFC 9669, "BPF Instruction Set Architecture").

/// Bytes per instruction slot (a wide `lddw` takes two).
pub const INSN_BYTES: usize = 8;

/// Instruction classes (the low 3 bits of the opcode).
pub mod class {
    /// Wide immediate load (`lddw`).
    pub const LD: u8 = 0x00;
    /// Load from memory into a register.
    pub const LDX: u8 = 0x01;
    /// Store an immediate to memory.
    pub const ST: u8 = 0x02;
    /// Store a register to memory.
    pub const STX: u8 = 0x03;
    /// 32-bit arithmetic.
    pub const ALU: u8 = 0x04;
    /// 64-bit jumps, calls and exit.
    pub const JMP: u8 = 0x05;
    /// 32-bit jumps.
    pub const JMP32: u8 = 0x06;
    /// 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;
}

/// The source bit of arithmetic and jump opcodes: the operand is `src` (set) or `imm`.
pub const SRC_REG: u8 = 0x08;

/// Arithmetic operations (the high 4 bits of an ALU/ALU64 opcode).
pub mod alu {
    /// `dst += src`.
    pub const ADD: u8 = 0x00;
    /// `dst -= src`.
    pub const SUB: u8 = 0x10;
    /// `dst *= src`.
    pub const MUL: u8 = 0x20;
    /// `dst /= src` (unsigned; 0 when `src` is 0).
    pub const DIV: u8 = 0x30;
    /// `dst |= src`.
    pub const OR: u8 = 0x40;
    /// `dst &= src`.
    pub const AND: u8 = 0x50;
    /// `dst <<= src`.
    pub const LSH: u8 = 0x60;
    /// `dst >>= src` (logical).
    pub const RSH: u8 = 0x70;
    /// `dst = -dst`.
    pub const NEG: u8 = 0x80;
    /// `dst %= src` (unsigned; unchanged when `src` is 0).
    pub const MOD: u8 = 0x90;
    /// `dst ^= src`.
    pub const XOR: u8 = 0xa0;
    /// `dst = src`.
    pub const MOV: u8 = 0xb0;
    /// `dst >>= src` (arithmetic).
    pub const ARSH: u8 = 0xc0;
    /// Byte-order conversion (`le16`..`be64`).
    pub const END: u8 = 0xd0;
}

/// Jump operations (the high 4 bits of a JMP/JMP32 opcode).
pub mod jmp {
    /// Unconditional jump (JMP class only).
    pub const JA: u8 = 0x00;
    /// `==`.
    pub const JEQ: u8 = 0x10;
    /// `>` unsigned.
    pub const JGT: u8 = 0x20;
    /// `>=` unsigned.
    pub const JGE: u8 = 0x30;
    /// `dst & src != 0`.
    pub const JSET: u8 = 0x40;
    /// `!=`.
    pub const JNE: u8 = 0x50;
    /// `>` signed.
    pub const JSGT: u8 = 0x60;
    /// `>=` signed.
    pub const JSGE: u8 = 0x70;
    /// Helper call (`src` 0) or call of a function of the same section (`src` 1).
    pub const CALL: u8 = 0x80;
    /// Return from the function (or end the program).
    pub const EXIT: u8 = 0x90;
    /// `<` unsigned.
    pub const JLT: u8 = 0xa0;
    /// `<=` unsigned.
    pub const JLE: u8 = 0xb0;
    /// `<` signed.
    pub const JSLT: u8 = 0xc0;
    /// `<=` signed.
    pub const JSLE: u8 = 0xd0;
}

/// The `src` of a call that targets a function of the same section (a "pseudo call").
pub const PSEUDO_CALL: u8 = 1;

/// The memory-access modes and sizes of load and store opcodes.
pub mod mem {
    /// Mode bits of a plain memory access.
    pub const MEM: u8 = 0x60;
    /// Mode bits of an immediate load (`lddw`).
    pub const IMM: u8 = 0x00;
    /// Size bits: 4 bytes.
    pub const W: u8 = 0x00;
    /// Size bits: 2 bytes.
    pub const H: u8 = 0x08;
    /// Size bits: 1 byte.
    pub const B: u8 = 0x10;
    /// Size bits: 8 bytes.
    pub const DW: u8 = 0x18;
}

/// The `lddw` opcode (two slots: the second carries the high 32 bits of the immediate).
pub const LDDW: u8 = class::LD | mem::IMM | mem::DW;

/// One decoded instruction slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// The opcode.
    pub op: u8,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register (0..=10).
    pub src: u8,
    /// Signed offset (jumps, memory accesses).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes the 8 little-endian bytes of one slot.
    pub fn decode(slot: [u8; INSN_BYTES]) -> Self {
        Self {
            op: slot[0],
            dst: slot[1] & 0x0f,
            src: slot[1] >> 4,
            off: i16::from_le_bytes([slot[2], slot[3]]),
            imm: i32::from_le_bytes([slot[4], slot[5], slot[6], slot[7]]),
        }
    }

    /// Encodes it back into 8 bytes.
    pub fn encode(self) -> [u8; INSN_BYTES] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.op,
            (self.src << 4) | (self.dst & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// Its class.
    pub fn class(self) -> u8 {
        self.op & 0x07
    }

    /// Its operation (the high 4 bits: an `alu::` or `jmp::` code).
    pub fn operation(self) -> u8 {
        self.op & 0xf0
    }

    /// The width in bytes of a load or store.
    pub fn access_size(self) -> usize {
        match self.op & 0x18 {
            mem::B => 1,
            mem::H => 2,
            mem::W => 4,
            _ => 8,
        }
    }
}

/// Decodes a section's bytes into instruction slots (the length must be a multiple of 8).
pub fn decode_all(code: &[u8]) -> Vec<Insn> {
    code.chunks_exact(INSN_BYTES)
        .map(|slot| {
            let mut bytes = [0; INSN_BYTES];
            bytes.copy_from_slice(slot);
            Insn::decode(bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_and_encode_round_trip() {
        let slot = [0xb7, 0x21, 0xfe, 0xff, 0x78, 0x56, 0x34, 0x12];
        let insn = Insn::decode(slot);
        assert_eq!(insn.op, 0xb7);
        assert_eq!(insn.dst, 1);
        assert_eq!(insn.src, 2);
        assert_eq!(insn.off, -2);
        assert_eq!(insn.imm, 0x1234_5678);
        assert_eq!(insn.encode(), slot);
    }
}
