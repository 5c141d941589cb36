// SPDX-License-Identifier: Apache-2.0
//! Shared by the integration tests: a tiny eBPF assembler, an ELF writer for hand-made
//! programs, and a framed run of a kernel over an input cut into pieces.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "the assembler splits words into instruction fields"
)]

use bytes::Bytes;
use object::write::{Object, Relocation, StandardSection, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
};
use quarry_ebpf::isa::Insn;
use quarry_kernels::{BoundKernel, Framer, KernelError};

/// One instruction slot.
pub(crate) fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        op,
        dst,
        src,
        off,
        imm,
    }
}

pub(crate) fn mov_imm(dst: u8, imm: i32) -> Insn {
    insn(0xb7, dst, 0, 0, imm)
}
pub(crate) fn mov_reg(dst: u8, src: u8) -> Insn {
    insn(0xbf, dst, src, 0, 0)
}
pub(crate) fn add_imm(dst: u8, imm: i32) -> Insn {
    insn(0x07, dst, 0, 0, imm)
}
pub(crate) fn ldx_dw(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x79, dst, src, off, 0)
}
pub(crate) fn ldx_b(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x71, dst, src, off, 0)
}
pub(crate) fn stx_dw(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x7b, dst, src, off, 0)
}
pub(crate) fn stx_b(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x73, dst, src, off, 0)
}
pub(crate) fn ja(off: i16) -> Insn {
    insn(0x05, 0, 0, off, 0)
}
pub(crate) fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x15, dst, 0, off, imm)
}
pub(crate) fn call(id: i32) -> Insn {
    insn(0x85, 0, 0, 0, id)
}
pub(crate) fn call_local(delta: i32) -> Insn {
    insn(0x85, 0, 1, 0, delta)
}
pub(crate) fn exit() -> Insn {
    insn(0x95, 0, 0, 0, 0)
}
/// `lddw dst, imm64` (two slots).
pub(crate) fn lddw(dst: u8, imm: u64) -> [Insn; 2] {
    [
        insn(0x18, dst, 0, 0, imm as u32 as i32),
        insn(0, 0, 0, 0, (imm >> 32) as u32 as i32),
    ]
}

/// The bytes of `code`.
pub(crate) fn bytes(code: &[Insn]) -> Vec<u8> {
    code.iter().flat_map(|i| i.encode()).collect()
}

/// A BPF ELF object with one code section per entry of `sections`.
pub(crate) fn elf(sections: &[(&str, &[Insn])]) -> Vec<u8> {
    elf_for(Architecture::Bpf, sections)
}

/// An ELF object for `arch` with the given code sections.
pub(crate) fn elf_for(arch: Architecture, sections: &[(&str, &[Insn])]) -> Vec<u8> {
    let mut obj = Object::new(BinaryFormat::Elf, arch, Endianness::Little);
    for (name, code) in sections {
        let id = obj.add_section(Vec::new(), name.as_bytes().to_vec(), SectionKind::Text);
        obj.append_section_data(id, &bytes(code), 8);
    }
    obj.write().expect("an ELF object")
}

/// A BPF object whose chunk section loads the address of a global in `.data` at its first
/// instruction (a `lddw` with an `R_BPF_64_64` relocation).
pub(crate) fn elf_with_writable_global() -> Vec<u8> {
    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    let text = obj.add_section(Vec::new(), b"quarry/chunk".to_vec(), SectionKind::Text);
    let [lo, hi] = lddw(1, 0);
    obj.append_section_data(text, &bytes(&[lo, hi, mov_imm(0, 0), exit()]), 8);
    let data = obj.section_id(StandardSection::Data);
    let offset = obj.append_section_data(data, &[0; 8], 8);
    let symbol = obj.add_symbol(Symbol {
        name: b"counter".to_vec(),
        value: offset,
        size: 8,
        kind: SymbolKind::Data,
        scope: SymbolScope::Compilation,
        weak: false,
        section: SymbolSection::Section(data),
        flags: SymbolFlags::None,
    });
    obj.add_relocation(
        text,
        Relocation {
            offset: 0,
            symbol,
            addend: 0,
            flags: RelocationFlags::Elf { r_type: 1 },
        },
    )
    .expect("a relocation");
    obj.write().expect("an ELF object")
}

/// Runs `bound`'s CPU run over `input` cut into pieces of `sizes` (cycled, 0 read as 1) and
/// framed into chunks of whole records, as the host does for a device.
#[cfg_attr(
    not(feature = "ebpf"),
    allow(dead_code, reason = "used by the twins tests")
)]
pub(crate) fn run_pieces(
    bound: &dyn BoundKernel,
    input: &[u8],
    sizes: &[usize],
) -> Result<Vec<u8>, KernelError> {
    let mut framer = Framer::new(bound.framing(), usize::MAX);
    let mut run = bound.cpu().expect("a run");
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(input.len());
        let end = (pos + size.max(1)).min(input.len());
        for chunk in framer
            .push(Bytes::copy_from_slice(&input[pos..end]))
            .expect("no record limit")
        {
            run.feed(&chunk, &mut out)?;
        }
        pos = end;
        i += 1;
    }
    if let Some(rest) = framer.finish() {
        run.feed(&rest, &mut out)?;
    }
    run.finish(&mut out)?;
    Ok(out)
}

/// The offset of a context field, as a memory-access offset.
pub(crate) fn field(offset: usize) -> i16 {
    i16::try_from(offset).expect("a small offset")
}
