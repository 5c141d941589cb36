// SPDX-License-Identifier: Apache-2.0
//! The load-time check of a function's code: every instruction is one the interpreter runs,
//! every register exists, `r10` is never written, every jump and call lands on an instruction
//! of the same section, every helper exists, and no path runs past the end.
//!
//! Memory safety does not rest on this pass: the interpreter checks every access at run time.
//! The pass makes unsupported code fail at registration rather than halfway through a job.

use crate::abi::Helper;
use crate::error::LoadError;
use crate::isa::{Insn, LDDW, PSEUDO_CALL, SRC_REG, alu, class, jmp, mem};

/// The frame pointer, read-only.
const R10: u8 = 10;

/// Checks `code`, the instructions of `section`.
pub(crate) fn verify(section: &str, code: &[Insn]) -> Result<(), LoadError> {
    let bad = |pc: usize, reason: String| LoadError::BadInstruction {
        section: section.to_owned(),
        pc,
        reason,
    };
    if code.is_empty() {
        return Err(bad(0, "the section holds no instructions".to_owned()));
    }
    // The second slots of wide loads: not instructions, never jump targets.
    let mut second_slot = vec![false; code.len()];
    for (pc, insn) in code.iter().enumerate() {
        if insn.op == LDDW && !second_slot[pc] && pc + 1 < code.len() {
            second_slot[pc + 1] = true;
        }
    }
    let target_of = |pc: usize, delta: i64| -> Result<usize, LoadError> {
        let target = i64::try_from(pc)
            .ok()
            .and_then(|p| p.checked_add(1 + delta))
            .and_then(|t| usize::try_from(t).ok())
            .filter(|&t| t < code.len())
            .ok_or_else(|| {
                bad(
                    pc,
                    format!(
                        "jumps outside the section (offset {delta}, {} instructions)",
                        code.len()
                    ),
                )
            })?;
        if second_slot[target] {
            return Err(bad(
                pc,
                format!("jumps into the middle of the wide load at {}", target - 1),
            ));
        }
        Ok(target)
    };
    let mut last_pc = 0;
    for (pc, insn) in code.iter().enumerate() {
        if second_slot[pc] {
            continue;
        }
        last_pc = pc;
        if insn.dst > R10 || insn.src > R10 {
            return Err(bad(
                pc,
                format!(
                    "uses register r{}, which does not exist (r0..r10)",
                    insn.dst.max(insn.src)
                ),
            ));
        }
        let writes_dst = matches!(
            insn.class(),
            class::ALU | class::ALU64 | class::LDX | class::LD
        );
        if writes_dst && insn.dst == R10 {
            return Err(bad(
                pc,
                "writes r10, the read-only frame pointer".to_owned(),
            ));
        }
        match insn.class() {
            class::ALU | class::ALU64 => check_alu(*insn).map_err(|r| bad(pc, r))?,
            class::JMP | class::JMP32 => match insn.operation() {
                jmp::CALL if insn.class() == class::JMP => match insn.src {
                    0 => {
                        if Helper::from_id(insn.imm).is_none() {
                            return Err(LoadError::UnknownHelper {
                                section: section.to_owned(),
                                pc,
                                id: insn.imm,
                                known: Helper::listing(),
                            });
                        }
                    }
                    PSEUDO_CALL => {
                        target_of(pc, i64::from(insn.imm))?;
                    }
                    other => {
                        return Err(bad(
                            pc,
                            format!(
                                "calls a kernel function (call kind {other}); device programs can call only the quarry_* helpers"
                            ),
                        ));
                    }
                },
                jmp::EXIT if insn.class() == class::JMP => {}
                jmp::JA if insn.class() == class::JMP => {
                    target_of(pc, i64::from(insn.off))?;
                }
                jmp::JEQ
                | jmp::JGT
                | jmp::JGE
                | jmp::JSET
                | jmp::JNE
                | jmp::JSGT
                | jmp::JSGE
                | jmp::JLT
                | jmp::JLE
                | jmp::JSLT
                | jmp::JSLE => {
                    target_of(pc, i64::from(insn.off))?;
                }
                _ => return Err(bad(pc, unknown_opcode(insn.op))),
            },
            class::LD => {
                if insn.op != LDDW {
                    return Err(bad(
                        pc,
                        format!(
                            "opcode {:#04x} is a legacy packet load; read the chunk through ctx->data",
                            insn.op
                        ),
                    ));
                }
                if insn.src != 0 {
                    return Err(bad(
                        pc,
                        format!(
                            "loads a map or BTF object (lddw kind {}); device programs have no maps: keep what must last between chunks in ctx->state",
                            insn.src
                        ),
                    ));
                }
                match code.get(pc + 1) {
                    Some(next) if next.op == 0 && next.dst == 0 && next.src == 0 => {}
                    _ => {
                        return Err(bad(
                            pc,
                            "a wide load (lddw) without its second slot".to_owned(),
                        ));
                    }
                }
            }
            class::LDX | class::ST | class::STX => {
                if insn.op & 0xe0 != mem::MEM {
                    return Err(bad(
                        pc,
                        format!(
                            "opcode {:#04x} is an atomic or sign-extending memory access, which the VM does not run; compile with -mcpu=v3 or lower and without __sync builtins",
                            insn.op
                        ),
                    ));
                }
            }
            _ => return Err(bad(pc, unknown_opcode(insn.op))),
        }
    }
    let last = code[last_pc];
    let ends = last.class() == class::JMP
        && (last.operation() == jmp::EXIT || last.operation() == jmp::JA);
    if !ends {
        return Err(bad(
            last_pc,
            "the last instruction is neither exit nor a jump, so the code could run past the end"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Checks an arithmetic instruction.
fn check_alu(insn: Insn) -> Result<(), String> {
    let op = insn.operation();
    if op > alu::END {
        return Err(unknown_opcode(insn.op));
    }
    if insn.off != 0 {
        return Err(format!(
            "opcode {:#04x} with offset {} (signed division or sign-extending move, ISA v4) is not supported; compile with -mcpu=v3 or lower",
            insn.op, insn.off
        ));
    }
    if op == alu::END {
        if insn.class() == class::ALU64 {
            return Err(
                "an unconditional byte swap (ISA v4) is not supported; compile with -mcpu=v3 or lower"
                    .to_owned(),
            );
        }
        if !matches!(insn.imm, 16 | 32 | 64) {
            return Err(format!(
                "a byte-order conversion to {} bits; only 16, 32 and 64 exist",
                insn.imm
            ));
        }
    }
    if op == alu::NEG && insn.op & SRC_REG != 0 {
        return Err(unknown_opcode(insn.op));
    }
    Ok(())
}

fn unknown_opcode(op: u8) -> String {
    format!("opcode {op:#04x} is not an eBPF instruction the VM runs")
}
