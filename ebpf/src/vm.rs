// SPDX-License-Identifier: Apache-2.0
//! The metered interpreter: runs one call of a program's function over a chunk, counting every
//! instruction against the call's budget and checking every memory access against the areas
//! of the program's address space (see [`crate::abi::Area`]).
//!
//! Arithmetic follows RFC 9669: 32-bit operations zero-extend their result, shift amounts are
//! masked, division by zero gives 0 and modulo by zero leaves the dividend.

// eBPF defines its arithmetic on wrapping two's-complement words: the casts between u64, u32,
// i64 and i32 below are those definitions, not accidents.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "eBPF arithmetic is defined as truncating and sign-reinterpreting casts"
)]

use quarry_kernels::Params;

use crate::abi::{Area, FRAME_BYTES, Helper, MAX_FRAMES, ctx};
use crate::error::RunError;
use crate::isa::{Insn, LDDW, PSEUDO_CALL, SRC_REG, alu, class, jmp};
use crate::program::Function;

/// The memory one call sees.
pub(crate) struct Memory<'a> {
    /// The `struct quarry_ctx` of the call.
    pub(crate) context: [u8; ctx::SIZE],
    /// The chunk.
    pub(crate) input: &'a [u8],
    /// The job's state.
    pub(crate) state: &'a mut [u8],
    /// The stack of every frame.
    pub(crate) stack: &'a mut [u8],
    /// The program's read-only data.
    pub(crate) read_only: &'a [Vec<u8>],
}

impl Memory<'_> {
    /// The `len` bytes at `addr`, or why they are out of bounds.
    fn read(&self, addr: u64, len: usize) -> Result<&[u8], String> {
        let (area, offset) = Area::of(addr).ok_or_else(|| unmapped(addr))?;
        let bytes: &[u8] = match area {
            Area::Context => &self.context,
            Area::Input => self.input,
            Area::State => self.state,
            Area::Stack => self.stack,
            Area::ReadOnly(n) => usize::try_from(n)
                .ok()
                .and_then(|n| self.read_only.get(n))
                .ok_or_else(|| unmapped(addr))?,
        };
        let size = bytes.len();
        offset
            .checked_add(len)
            .and_then(|end| bytes.get(offset..end))
            .ok_or_else(|| past_end(area, offset, size))
    }

    /// The `len` writable bytes at `addr`, or why they are out of bounds or read-only.
    fn write(&mut self, addr: u64, len: usize) -> Result<&mut [u8], String> {
        let (area, offset) = Area::of(addr).ok_or_else(|| unmapped(addr))?;
        let bytes: &mut [u8] = match area {
            Area::State => self.state,
            Area::Stack => self.stack,
            _ => {
                return Err(format!(
                    "{} is read-only; write to the stack or ctx->state",
                    area.describe()
                ));
            }
        };
        let size = bytes.len();
        offset
            .checked_add(len)
            .and_then(|end| bytes.get_mut(offset..end))
            .ok_or_else(|| past_end(area, offset, size))
    }
}

fn unmapped(addr: u64) -> String {
    if addr < 1 << 32 {
        "the address is in no memory area (a null or uninitialised pointer?)".to_owned()
    } else {
        "the address is in no memory area the program may use".to_owned()
    }
}

fn past_end(area: Area, offset: usize, size: usize) -> String {
    format!(
        "it reaches past the end of {} (offset {offset}, {size} bytes long)",
        area.describe()
    )
}

/// What a call may spend and where its output goes.
pub(crate) struct Call<'a> {
    /// The section run (for errors).
    pub(crate) section: &'static str,
    /// The instruction budget.
    pub(crate) budget: u64,
    /// Builds the over-budget error.
    pub(crate) over_budget: &'a dyn Fn() -> RunError,
    /// The job's parameters.
    pub(crate) params: &'a Params,
    /// Output of the job.
    pub(crate) out: &'a mut Vec<u8>,
    /// Most bytes the call may add to `out`.
    pub(crate) max_output: usize,
}

/// A caller's registers, kept while its callee runs.
struct Frame {
    return_pc: usize,
    saved: [u64; 4],
    frame_pointer: u64,
}

/// Runs `function` from its first instruction with `r1` pointing at the context; returns `r0`
/// and the instructions executed.
pub(crate) fn run(
    function: &Function,
    memory: &mut Memory<'_>,
    call: &mut Call<'_>,
) -> Result<(u64, u64), RunError> {
    let code = function.code.as_slice();
    let section = call.section;
    let out_start = call.out.len();
    let mut reg = [0_u64; 11];
    reg[1] = Area::Context.base();
    let stack_top = Area::Stack.base() + (FRAME_BYTES * MAX_FRAMES) as u64;
    reg[10] = stack_top;
    let mut frames: Vec<Frame> = Vec::new();
    let mut pc = 0_usize;
    let mut executed = 0_u64;
    loop {
        if executed >= call.budget {
            return Err((call.over_budget)());
        }
        executed += 1;
        // The verifier keeps every jump inside the code; a run off the end would be a VM bug,
        // reported rather than trusted.
        let Some(&insn) = code.get(pc) else {
            return Err(RunError::Helper {
                section,
                pc,
                helper: "vm",
                reason: "ran past the end of the code".to_owned(),
            });
        };
        let dst = usize::from(insn.dst);
        let src = usize::from(insn.src);
        pc += 1;
        match insn.class() {
            class::ALU64 => {
                let operand = if insn.op & SRC_REG != 0 {
                    reg[src]
                } else {
                    i64::from(insn.imm) as u64
                };
                reg[dst] = alu64(insn.operation(), reg[dst], operand);
            }
            class::ALU => {
                let operand = if insn.op & SRC_REG != 0 {
                    reg[src] as u32
                } else {
                    insn.imm as u32
                };
                reg[dst] = if insn.operation() == alu::END {
                    byte_order(insn.op & SRC_REG != 0, insn.imm, reg[dst])
                } else {
                    u64::from(alu32(insn.operation(), reg[dst] as u32, operand))
                };
            }
            class::LD => {
                // Only `lddw` passes the verifier; its second slot holds the high half.
                let high = code.get(pc).map_or(0, |next| next.imm as u32);
                reg[dst] = u64::from(insn.imm as u32) | (u64::from(high) << 32);
                pc += 1;
                debug_assert_eq!(insn.op, LDDW);
            }
            class::LDX => {
                let addr = reg[src].wrapping_add(i64::from(insn.off) as u64);
                let size = insn.access_size();
                let bytes = memory
                    .read(addr, size)
                    .map_err(|detail| oob(section, pc - 1, "read", size, addr, detail))?;
                reg[dst] = load_le(bytes);
            }
            class::ST | class::STX => {
                let addr = reg[dst].wrapping_add(i64::from(insn.off) as u64);
                let size = insn.access_size();
                let value = if insn.class() == class::STX {
                    reg[src]
                } else {
                    i64::from(insn.imm) as u64
                };
                let bytes = memory
                    .write(addr, size)
                    .map_err(|detail| oob(section, pc - 1, "write", size, addr, detail))?;
                bytes.copy_from_slice(&value.to_le_bytes()[..size]);
            }
            class::JMP | class::JMP32 => match insn.operation() {
                jmp::EXIT => match frames.pop() {
                    None => return Ok((reg[0], executed)),
                    Some(frame) => {
                        reg[6..10].copy_from_slice(&frame.saved);
                        reg[10] = frame.frame_pointer;
                        pc = frame.return_pc;
                    }
                },
                jmp::CALL if insn.src == PSEUDO_CALL => {
                    if frames.len() + 1 >= MAX_FRAMES {
                        return Err(RunError::CallDepth {
                            section,
                            pc: pc - 1,
                            max: MAX_FRAMES,
                        });
                    }
                    let mut saved = [0; 4];
                    saved.copy_from_slice(&reg[6..10]);
                    frames.push(Frame {
                        return_pc: pc,
                        saved,
                        frame_pointer: reg[10],
                    });
                    reg[10] -= FRAME_BYTES as u64;
                    pc = jump(pc, insn.imm.into());
                }
                jmp::CALL => {
                    let cost = helper(insn, &mut reg, memory, call, out_start, pc - 1)?;
                    executed = executed.saturating_add(cost);
                }
                jmp::JA => pc = jump(pc, insn.off.into()),
                op => {
                    let taken = if insn.class() == class::JMP {
                        let operand = if insn.op & SRC_REG != 0 {
                            reg[src]
                        } else {
                            i64::from(insn.imm) as u64
                        };
                        compare64(op, reg[dst], operand)
                    } else {
                        let operand = if insn.op & SRC_REG != 0 {
                            reg[src] as u32
                        } else {
                            insn.imm as u32
                        };
                        compare32(op, reg[dst] as u32, operand)
                    };
                    if taken {
                        pc = jump(pc, insn.off.into());
                    }
                }
            },
            _ => {
                return Err(RunError::Helper {
                    section,
                    pc: pc - 1,
                    helper: "vm",
                    reason: format!("opcode {:#04x} passed the verifier", insn.op),
                });
            }
        }
    }
}

/// `pc + delta` (the verifier checked it lands inside the code).
fn jump(pc: usize, delta: i64) -> usize {
    (pc as i64).wrapping_add(delta) as usize
}

fn oob(
    section: &'static str,
    pc: usize,
    access: &'static str,
    size: usize,
    addr: u64,
    detail: String,
) -> RunError {
    RunError::OutOfBounds {
        section,
        pc,
        access,
        size,
        addr,
        detail,
    }
}

fn load_le(bytes: &[u8]) -> u64 {
    let mut word = [0_u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

fn alu64(op: u8, a: u64, b: u64) -> u64 {
    match op {
        alu::ADD => a.wrapping_add(b),
        alu::SUB => a.wrapping_sub(b),
        alu::MUL => a.wrapping_mul(b),
        alu::DIV => a.checked_div(b).unwrap_or(0),
        alu::OR => a | b,
        alu::AND => a & b,
        alu::LSH => a.wrapping_shl(b as u32 & 63),
        alu::RSH => a.wrapping_shr(b as u32 & 63),
        alu::NEG => (a as i64).wrapping_neg() as u64,
        alu::MOD => a.checked_rem(b).unwrap_or(a),
        alu::XOR => a ^ b,
        alu::MOV => b,
        alu::ARSH => ((a as i64) >> (b & 63)) as u64,
        _ => a,
    }
}

fn alu32(op: u8, a: u32, b: u32) -> u32 {
    match op {
        alu::ADD => a.wrapping_add(b),
        alu::SUB => a.wrapping_sub(b),
        alu::MUL => a.wrapping_mul(b),
        alu::DIV => a.checked_div(b).unwrap_or(0),
        alu::OR => a | b,
        alu::AND => a & b,
        alu::LSH => a.wrapping_shl(b & 31),
        alu::RSH => a.wrapping_shr(b & 31),
        alu::NEG => (a as i32).wrapping_neg() as u32,
        alu::MOD => a.checked_rem(b).unwrap_or(a),
        alu::XOR => a ^ b,
        alu::MOV => b,
        alu::ARSH => ((a as i32) >> (b & 31)) as u32,
        _ => a,
    }
}

/// `le16`..`le64` (`to_big` false) or `be16`..`be64` on a little-endian machine.
fn byte_order(to_big: bool, bits: i32, value: u64) -> u64 {
    match (to_big, bits) {
        (false, 16) => value & 0xffff,
        (false, 32) => value & 0xffff_ffff,
        (true, 16) => u64::from((value as u16).swap_bytes()),
        (true, 32) => u64::from((value as u32).swap_bytes()),
        (true, _) => value.swap_bytes(),
        (false, _) => value,
    }
}

fn compare64(op: u8, a: u64, b: u64) -> bool {
    match op {
        jmp::JEQ => a == b,
        jmp::JGT => a > b,
        jmp::JGE => a >= b,
        jmp::JSET => a & b != 0,
        jmp::JNE => a != b,
        jmp::JSGT => (a as i64) > (b as i64),
        jmp::JSGE => (a as i64) >= (b as i64),
        jmp::JLT => a < b,
        jmp::JLE => a <= b,
        jmp::JSLT => (a as i64) < (b as i64),
        jmp::JSLE => (a as i64) <= (b as i64),
        _ => false,
    }
}

fn compare32(op: u8, a: u32, b: u32) -> bool {
    match op {
        jmp::JEQ => a == b,
        jmp::JGT => a > b,
        jmp::JGE => a >= b,
        jmp::JSET => a & b != 0,
        jmp::JNE => a != b,
        jmp::JSGT => (a as i32) > (b as i32),
        jmp::JSGE => (a as i32) >= (b as i32),
        jmp::JLT => a < b,
        jmp::JLE => a <= b,
        jmp::JSLT => (a as i32) < (b as i32),
        jmp::JSLE => (a as i32) <= (b as i32),
        _ => false,
    }
}

/// Runs helper `insn.imm` on `r1..r5`, leaving its result in `r0`; returns the instructions
/// it is charged beyond the call itself (one per 8 bytes it copies).
fn helper(
    insn: Insn,
    reg: &mut [u64; 11],
    memory: &mut Memory<'_>,
    call: &mut Call<'_>,
    out_start: usize,
    pc: usize,
) -> Result<u64, RunError> {
    let section = call.section;
    let Some(helper) = Helper::from_id(insn.imm) else {
        return Err(RunError::Helper {
            section,
            pc,
            helper: "vm",
            reason: format!("unknown helper id {} passed the verifier", insn.imm),
        });
    };
    let fail = |reason: String| RunError::Helper {
        section,
        pc,
        helper: helper.name(),
        reason,
    };
    let length = |value: u64, what: &str| {
        usize::try_from(value).map_err(|_| fail(format!("{what} {value} is not a length")))
    };
    let emit = |bytes: &[u8], out: &mut Vec<u8>| {
        if out.len() - out_start + bytes.len() > call.max_output {
            return Err(fail(format!(
                "the call's output would pass its limit of {} bytes",
                call.max_output
            )));
        }
        out.extend_from_slice(bytes);
        Ok(())
    };
    let copied = match helper {
        Helper::Emit => {
            let len = length(reg[2], "length")?;
            let bytes = memory
                .read(reg[1], len)
                .map_err(|detail| oob(section, pc, "read", len, reg[1], detail))?;
            emit(bytes, call.out)?;
            reg[0] = 0;
            len
        }
        Helper::EmitU64 => {
            let text = reg[1].to_string();
            emit(text.as_bytes(), call.out)?;
            reg[0] = 0;
            text.len()
        }
        Helper::Param => {
            let name_len = length(reg[2], "name length")?;
            let name = memory
                .read(reg[1], name_len)
                .map_err(|detail| oob(section, pc, "read", name_len, reg[1], detail))?;
            let value = std::str::from_utf8(name)
                .ok()
                .and_then(|n| call.params.raw(n))
                .map(|v| v.as_bytes().to_vec());
            match value {
                None => {
                    reg[0] = u64::MAX;
                    name_len
                }
                Some(value) => {
                    let room = length(reg[4], "buffer length")?;
                    let n = value.len().min(room);
                    let buf = memory
                        .write(reg[3], n)
                        .map_err(|detail| oob(section, pc, "write", n, reg[3], detail))?;
                    buf.copy_from_slice(&value[..n]);
                    reg[0] = value.len() as u64;
                    name_len + n
                }
            }
        }
    };
    Ok((copied / 8) as u64)
}
