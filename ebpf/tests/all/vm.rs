// SPDX-License-Identifier: Apache-2.0
//! The VM on hand-assembled programs: the budget stops an endless loop, out-of-bounds and
//! read-only accesses are refused, state lasts between chunks, helpers and local calls work,
//! and each kind of bad object is refused at load with its own error.

use std::sync::Arc;

use object::Architecture;
use quarry_ebpf::abi::{Area, ctx};
use quarry_ebpf::isa::Insn;
use quarry_ebpf::{Job, Limits, LoadError, Program, RunError};
use quarry_kernels::Params;

use crate::common::*;

fn load(sections: &[(&str, &[Insn])]) -> Result<Program, LoadError> {
    Program::load("test", &elf(sections), &Limits::default())
}

fn job(code: &[Insn], limits: Limits) -> Job {
    let program = Program::load("test", &elf(&[("quarry/chunk", code)]), &limits).expect("loads");
    Job::new(Arc::new(program), Params::default(), limits)
}

#[test]
fn an_endless_loop_stops_at_its_budget() {
    let limits = Limits {
        budget_base: 1_000,
        budget_per_byte: 10,
        ..Limits::default()
    };
    let mut job = job(&[ja(-1)], limits);
    let err = job
        .chunk(&[0; 50], &mut Vec::new())
        .expect_err("over budget");
    assert_eq!(
        err,
        RunError::OverBudget {
            section: "quarry/chunk",
            budget: 1_500,
            chunk_len: 50,
            base: 1_000,
            per_byte: 10,
        }
    );
    let message = err.to_string();
    assert!(message.contains("1500 instructions"), "{message}");
    assert!(message.contains("1000 + 10 per byte"), "{message}");
    assert_eq!(job.instructions(), 1_500);
}

#[test]
fn a_read_past_the_chunk_is_refused() {
    // r2 = ctx->data; r0 = *(u8 *)(r2 + 8)
    let code = [ldx_dw(2, 1, field(ctx::DATA)), ldx_b(0, 2, 8), exit()];
    let mut job = job(&code, Limits::default());
    assert!(job.chunk(&[0; 9], &mut Vec::new()).is_ok());
    let err = job
        .chunk(&[0; 8], &mut Vec::new())
        .expect_err("out of bounds");
    let RunError::OutOfBounds {
        pc,
        access,
        size,
        addr,
        ..
    } = &err
    else {
        panic!("not an out-of-bounds error: {err}");
    };
    assert_eq!((*pc, *access, *size), (1, "read", 1));
    assert_eq!(*addr, Area::Input.base() + 8);
    assert!(
        err.to_string().contains("past the end of the chunk"),
        "{err}"
    );
}

#[test]
fn writes_to_the_chunk_and_stray_pointers_are_refused() {
    let write_input = [
        ldx_dw(2, 1, field(ctx::DATA)),
        stx_b(2, 2, 0),
        mov_imm(0, 0),
        exit(),
    ];
    let err = job(&write_input, Limits::default())
        .chunk(b"abc", &mut Vec::new())
        .expect_err("read-only");
    assert!(err.to_string().contains("the chunk is read-only"), "{err}");

    let null = [mov_imm(2, 0), ldx_dw(0, 2, 0), exit()];
    let err = job(&null, Limits::default())
        .chunk(b"abc", &mut Vec::new())
        .expect_err("null");
    assert!(err.to_string().contains("null"), "{err}");

    let below_stack = [stx_dw(10, 1, -4096 - 8), mov_imm(0, 0), exit()];
    let err = job(&below_stack, Limits::default())
        .chunk(b"", &mut Vec::new())
        .expect_err("below the stack");
    assert!(err.to_string().contains("out of bounds"), "{err}");
}

#[test]
fn state_lasts_between_chunks_and_finish_emits_it() {
    // chunk: state->count += ctx->len
    let chunk = [
        ldx_dw(2, 1, field(ctx::STATE)),
        ldx_dw(3, 2, 0),
        ldx_dw(4, 1, field(ctx::LEN)),
        insn(0x0f, 3, 4, 0, 0), // r3 += r4
        stx_dw(2, 3, 0),
        mov_imm(0, 0),
        exit(),
    ];
    // finish: quarry_emit_u64(state->count)
    let finish = [
        ldx_dw(2, 1, field(ctx::STATE)),
        ldx_dw(1, 2, 0),
        call(3),
        mov_imm(0, 0),
        exit(),
    ];
    let program = Program::load(
        "count",
        &elf(&[("quarry/chunk", &chunk), ("quarry/finish", &finish)]),
        &Limits::default(),
    )
    .expect("loads");
    let mut job = Job::new(Arc::new(program), Params::default(), Limits::default());
    let mut out = Vec::new();
    for piece in [&b"abc"[..], b"", b"defgh"] {
        job.chunk(piece, &mut out).expect("runs");
    }
    job.finish(&mut out).expect("finishes");
    assert_eq!(out, b"8");
}

#[test]
fn params_are_read_and_emitted() {
    // Copy the name "p" onto the stack, read parameter p into the stack, emit what was read.
    let code = [
        mov_reg(6, 10),
        add_imm(6, -16),
        mov_imm(2, i32::from(b'p')),
        stx_b(6, 2, 0),
        mov_reg(1, 6),
        mov_imm(2, 1),
        mov_reg(3, 6),
        add_imm(3, 8),
        mov_imm(4, 8),
        call(2),
        // r0 = value length (or -1); emit min(len, 8) bytes from r6 + 8
        jeq_imm(0, -1, 4),
        mov_reg(1, 6),
        add_imm(1, 8),
        mov_reg(2, 0),
        call(1),
        mov_imm(0, 0),
        exit(),
    ];
    let limits = Limits::default();
    let program =
        Arc::new(Program::load("p", &elf(&[("quarry/chunk", &code)]), &limits).expect("loads"));
    let params = Params::new([("p".to_owned(), "hello".to_owned())]);
    let mut out = Vec::new();
    Job::new(Arc::clone(&program), params, limits)
        .chunk(b"", &mut out)
        .expect("runs");
    assert_eq!(out, b"hello");
    let mut out = Vec::new();
    Job::new(program, Params::default(), limits)
        .chunk(b"", &mut out)
        .expect("runs");
    assert!(out.is_empty());
}

#[test]
fn local_calls_return_and_keep_callee_saved_registers() {
    // r6 = 5; call +3; r0 = r6 + r0 - 5 -> 42 when the callee returns 42 and r6 survives.
    let code = [
        mov_imm(6, 5),
        call_local(4),
        add_imm(0, 0),
        insn(0x0f, 0, 6, 0, 0), // r0 += r6
        add_imm(0, -5),
        exit(),
        mov_imm(6, 99),
        mov_imm(0, 42),
        exit(),
    ];
    let err = job(&code, Limits::default())
        .chunk(b"", &mut Vec::new())
        .expect_err("returns 42, a failure code");
    assert_eq!(
        err,
        RunError::Failed {
            section: "quarry/chunk",
            code: 42
        }
    );
}

#[test]
fn arithmetic_follows_the_isa() {
    let limits = Limits::default();
    let returns = |code: &[Insn]| match job(code, limits).chunk(b"", &mut Vec::new()) {
        Ok(()) => 0,
        Err(RunError::Failed { code, .. }) => code,
        Err(e) => panic!("{e}"),
    };
    // Division by zero gives 0; modulo by zero keeps the dividend.
    assert_eq!(
        returns(&[mov_imm(0, 7), mov_imm(1, 0), insn(0x3f, 0, 1, 0, 0), exit()]),
        0
    );
    assert_eq!(
        returns(&[mov_imm(0, 7), mov_imm(1, 0), insn(0x9f, 0, 1, 0, 0), exit()]),
        7
    );
    // 32-bit results are zero-extended: (u32)-1 + 2 = 1.
    assert_eq!(
        returns(&[mov_imm(0, -1), insn(0x04, 0, 0, 0, 2), exit()]),
        1
    );
    // Shift amounts are masked: 1 << 65 == 2.
    assert_eq!(
        returns(&[mov_imm(0, 1), insn(0x67, 0, 0, 0, 65), exit()]),
        2
    );
    // Wide loads and byte swaps.
    let [lo, hi] = lddw(0, 0x0102_0304_0506_0708);
    assert_eq!(returns(&[lo, hi, insn(0xdc, 0, 0, 0, 16), exit()]), 0x0807);
}

#[test]
fn output_past_the_limit_is_refused() {
    let limits = Limits {
        max_output_per_call: 4,
        ..Limits::default()
    };
    // Emit the whole chunk.
    let code = [
        ldx_dw(2, 1, field(ctx::LEN)),
        ldx_dw(1, 1, field(ctx::DATA)),
        call(1),
        mov_imm(0, 0),
        exit(),
    ];
    let mut out = Vec::new();
    assert!(job(&code, limits).chunk(b"abcd", &mut out).is_ok());
    let err = job(&code, limits)
        .chunk(b"abcde", &mut out)
        .expect_err("over");
    assert!(err.to_string().contains("limit of 4 bytes"), "{err}");
}

#[test]
fn load_refuses_what_is_not_an_elf() {
    let err = Program::load("x", b"#!/bin/sh\n", &Limits::default()).expect_err("not ELF");
    assert!(matches!(err, LoadError::NotElf { .. }), "{err}");
    assert!(err.to_string().contains("clang -target bpf"), "{err}");
    let err = Program::load("x", b"", &Limits::default()).expect_err("empty");
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn load_refuses_other_machines() {
    let object = elf_for(
        Architecture::X86_64,
        &[("quarry/chunk", &[mov_imm(0, 0), exit()])],
    );
    let err = Program::load("x", &object, &Limits::default()).expect_err("x86");
    assert_eq!(
        err,
        LoadError::NotBpf {
            machine: 62,
            name: "x86-64"
        }
    );
    assert!(err.to_string().contains("not BPF"), "{err}");
}

#[test]
fn load_refuses_an_object_without_the_chunk_section() {
    let err = load(&[("xdp", &[mov_imm(0, 0), exit()])]).expect_err("no section");
    let LoadError::NoProgram { sections } = &err else {
        panic!("{err}");
    };
    assert!(sections.contains("xdp"), "{sections}");
    assert!(err.to_string().contains("quarry/chunk"), "{err}");
}

#[test]
fn load_names_an_unknown_helper() {
    let err =
        load(&[("quarry/chunk", &[call(6), mov_imm(0, 0), exit()])]).expect_err("bpf_trace_printk");
    assert_eq!(
        err,
        LoadError::UnknownHelper {
            section: "quarry/chunk".to_owned(),
            pc: 0,
            id: 6,
            known: "1 quarry_emit, 2 quarry_param, 3 quarry_emit_u64".to_owned(),
        }
    );
    assert!(err.to_string().contains("unknown helper id 6"), "{err}");
}

#[test]
fn load_refuses_programs_over_the_size_limits() {
    let limits = Limits {
        max_instructions: 4,
        ..Limits::default()
    };
    let code = [
        mov_imm(0, 0),
        mov_imm(0, 0),
        mov_imm(0, 0),
        mov_imm(0, 0),
        exit(),
    ];
    let err =
        Program::load("big", &elf(&[("quarry/chunk", &code)]), &limits).expect_err("too large");
    assert!(
        matches!(
            err,
            LoadError::TooLarge {
                size: 5,
                limit: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("program too large"), "{err}");
    let limits = Limits {
        max_object_bytes: 64,
        ..Limits::default()
    };
    let err =
        Program::load("big", &elf(&[("quarry/chunk", &[exit()])]), &limits).expect_err("too large");
    assert!(err.to_string().contains("the object (bytes)"), "{err}");
}

#[test]
fn load_refuses_bad_code() {
    let cases: [(&[Insn], &str); 5] = [
        (&[mov_imm(0, 0)], "run past the end"),
        (&[ja(5), exit()], "jumps outside"),
        (&[mov_imm(10, 0), exit()], "writes r10"),
        (&[insn(0x20, 0, 0, 0, 0), exit()], "legacy packet load"),
        (&[insn(0xdb, 1, 2, 0, 0), exit()], "atomic"),
    ];
    for (code, words) in cases {
        let err = load(&[("quarry/chunk", code)]).expect_err(words);
        assert!(err.to_string().contains(words), "{words}: {err}");
    }
}

#[test]
fn load_refuses_writable_globals() {
    let err =
        Program::load("g", &elf_with_writable_global(), &Limits::default()).expect_err("global");
    assert!(matches!(err, LoadError::Relocation { pc: 0, .. }), "{err}");
    assert!(err.to_string().contains("no writable globals"), "{err}");
}

#[test]
fn built_in_programs_say_whether_they_are_present() {
    match quarry_ebpf::builtin::kernel("crc32c", Limits::default()) {
        Ok(kernel) => {
            assert!(quarry_ebpf::builtin::available());
            assert!(kernel.program().finish().is_some());
        }
        Err(err) => {
            assert!(!quarry_ebpf::builtin::available());
            assert!(err.to_string().contains("--features ebpf"), "{err}");
        }
    }
    let err = quarry_ebpf::builtin::kernel("nope", Limits::default()).expect_err("unknown");
    assert!(
        err.to_string().contains("grep-count, csv-filter, crc32c"),
        "{err}"
    );
}
