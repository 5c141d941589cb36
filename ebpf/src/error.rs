// SPDX-License-Identifier: Apache-2.0
//! Why a program was refused at load, or stopped while running. Every message names what is
//! wrong and how to fix it.

/// Why an ELF object is not an acceptable device program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not an ELF object at all.
    #[error(
        "not an ELF object ({detail}); compile the program with `clang -target bpf -O2 -c prog.c -o prog.o` and send the .o file"
    )]
    NotElf {
        /// What the parser said.
        detail: String,
    },
    /// An ELF object for another machine.
    #[error(
        "not a BPF object: its ELF machine is {machine} ({name}), not BPF (247); compile with `clang -target bpf`"
    )]
    NotBpf {
        /// `e_machine`.
        machine: u16,
        /// Its usual name.
        name: &'static str,
    },
    /// A 32-bit or big-endian BPF object.
    #[error(
        "a {what} BPF object; device programs are 64-bit little-endian (`clang -target bpfel`, which `-target bpf` is on x86 and arm hosts)"
    )]
    WrongFlavour {
        /// `32-bit` or `big-endian`.
        what: &'static str,
    },
    /// No section holds the per-chunk function.
    #[error(
        "no program section: the object needs a function in section \"quarry/chunk\" (mark it QUARRY_CHUNK from quarry_bpf.h); its sections are: {sections}"
    )]
    NoProgram {
        /// The object's section names.
        sections: String,
    },
    /// The object or one of its programs is over a size limit.
    #[error("program too large: {what} is {size}, over the limit of {limit}")]
    TooLarge {
        /// What is measured (`the object (bytes)`, `section quarry/chunk (instructions)`).
        what: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A call of a helper the VM does not provide.
    #[error(
        "instruction {pc} of section {section} calls unknown helper id {id}; device programs may call only: {known} (see quarry_bpf.h)"
    )]
    UnknownHelper {
        /// The section.
        section: String,
        /// The instruction index.
        pc: usize,
        /// The helper id called.
        id: i32,
        /// The helpers there are, with their ids.
        known: String,
    },
    /// An instruction the VM does not run, or that breaks a rule (a jump out of the program,
    /// a write to `r10`...).
    #[error("instruction {pc} of section {section}: {reason}")]
    BadInstruction {
        /// The section.
        section: String,
        /// The instruction index.
        pc: usize,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A relocation the loader cannot apply (a writable global, a map, a call of a function
    /// that was not inlined).
    #[error("instruction {pc} of section {section}: {reason}")]
    Relocation {
        /// The section.
        section: String,
        /// The instruction index.
        pc: usize,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// Why a run stopped before its function returned 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The instruction budget of the call ran out.
    #[error(
        "stopped after {budget} instructions in section {section}: over the instruction budget for a call on {chunk_len} bytes ({base} + {per_byte} per byte); fix the loop or raise the budget (ebpf limits: budget_base, budget_per_byte)"
    )]
    OverBudget {
        /// The section.
        section: &'static str,
        /// The budget of this call.
        budget: u64,
        /// The chunk length it was computed from.
        chunk_len: usize,
        /// The fixed part of the budget.
        base: u64,
        /// The part per chunk byte.
        per_byte: u64,
    },
    /// A load or store outside the areas the program may touch.
    #[error(
        "instruction {pc} of section {section}: {access} of {size} bytes at {addr:#x} is out of bounds: {detail}"
    )]
    OutOfBounds {
        /// The section.
        section: &'static str,
        /// The instruction index.
        pc: usize,
        /// `read` or `write`.
        access: &'static str,
        /// The access width.
        size: usize,
        /// The address.
        addr: u64,
        /// Which area, and its bounds.
        detail: String,
    },
    /// A helper refused its arguments.
    #[error("instruction {pc} of section {section}: {helper}: {reason}")]
    Helper {
        /// The section.
        section: &'static str,
        /// The instruction index.
        pc: usize,
        /// The helper's name.
        helper: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Calls nested deeper than the VM allows.
    #[error(
        "instruction {pc} of section {section}: calls nested more than {max} deep; flatten the recursion"
    )]
    CallDepth {
        /// The section.
        section: &'static str,
        /// The instruction index.
        pc: usize,
        /// The deepest nesting allowed.
        max: usize,
    },
    /// The function returned a nonzero code.
    #[error("section {section} returned {code} (a program reports failure with a nonzero return)")]
    Failed {
        /// The section.
        section: &'static str,
        /// The value returned.
        code: u64,
    },
}
