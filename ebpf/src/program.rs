// SPDX-License-Identifier: Apache-2.0
//! Loading a device program: parsing the ELF object (with the `object` crate), finding its
//! entry sections, applying relocations to read-only data, and refusing anything the VM
//! cannot run safely, with an error that says what to change.

use object::read::elf::ElfFile64;
use object::{
    LittleEndian, Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget,
    SectionIndex,
};

use crate::abi::{Area, CHUNK_SECTION, FINISH_SECTION};
use crate::error::LoadError;
use crate::isa::{INSN_BYTES, Insn, LDDW, decode_all};
use crate::limits::Limits;
use crate::verify::verify;

/// `e_machine` of BPF objects.
const EM_BPF: u16 = 247;
/// `R_BPF_64_64`: the 64-bit address in a `lddw`.
const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: the target of a call.
const R_BPF_64_32: u32 = 10;

/// One entry function: its section and instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Its section ([`CHUNK_SECTION`] or [`FINISH_SECTION`]).
    pub section: &'static str,
    /// Its instruction slots, relocated.
    pub code: Vec<Insn>,
}

/// A loaded, checked device program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    name: String,
    chunk: Function,
    finish: Option<Function>,
    read_only: Vec<Vec<u8>>,
    object_bytes: usize,
}

impl Program {
    /// Loads the ELF object `elf` as program `name`, refusing it with a [`LoadError`] that says
    /// what to fix when it is not a device program the VM can run within `limits`.
    pub fn load(name: &str, elf: &[u8], limits: &Limits) -> Result<Self, LoadError> {
        if elf.len() > limits.max_object_bytes {
            return Err(LoadError::TooLarge {
                what: "the object (bytes)".to_owned(),
                size: elf.len(),
                limit: limits.max_object_bytes,
            });
        }
        check_header(elf)?;
        let file = ElfFile64::<LittleEndian>::parse(elf).map_err(|e| LoadError::NotElf {
            detail: e.to_string(),
        })?;
        let mut read_only = ReadOnlyAreas::default();
        let chunk =
            load_function(&file, CHUNK_SECTION, limits, &mut read_only)?.ok_or_else(|| {
                LoadError::NoProgram {
                    sections: section_names(&file),
                }
            })?;
        let finish = load_function(&file, FINISH_SECTION, limits, &mut read_only)?;
        Ok(Self {
            name: name.to_owned(),
            chunk,
            finish,
            read_only: read_only.data,
            object_bytes: elf.len(),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The per-chunk function.
    pub fn chunk(&self) -> &Function {
        &self.chunk
    }

    /// The final function, if the program has one.
    pub fn finish(&self) -> Option<&Function> {
        self.finish.as_ref()
    }

    /// The read-only data sections the code refers to, by area number.
    pub fn read_only(&self) -> &[Vec<u8>] {
        &self.read_only
    }

    /// Instruction slots in all its functions.
    pub fn instruction_count(&self) -> usize {
        self.chunk.code.len() + self.finish.as_ref().map_or(0, |f| f.code.len())
    }

    /// The size of the object it was loaded from.
    pub fn object_bytes(&self) -> usize {
        self.object_bytes
    }
}

/// Checks the ELF identification and machine by hand, so each kind of wrong file gets its own
/// message before the parser sees it.
fn check_header(elf: &[u8]) -> Result<(), LoadError> {
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(LoadError::NotElf {
            detail: if elf.is_empty() {
                "the body is empty".to_owned()
            } else {
                "it does not start with the ELF magic 7f 45 4c 46".to_owned()
            },
        });
    }
    let (Some(&class), Some(&data)) = (elf.get(4), elf.get(5)) else {
        return Err(LoadError::NotElf {
            detail: "the ELF header is cut short".to_owned(),
        });
    };
    let big_endian = data == 2;
    let machine = match elf.get(18..20) {
        Some(&[a, b]) if big_endian => u16::from_be_bytes([a, b]),
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => {
            return Err(LoadError::NotElf {
                detail: "the ELF header is cut short".to_owned(),
            });
        }
    };
    if machine != EM_BPF {
        return Err(LoadError::NotBpf {
            machine,
            name: machine_name(machine),
        });
    }
    if class != 2 {
        return Err(LoadError::WrongFlavour { what: "32-bit" });
    }
    if big_endian {
        return Err(LoadError::WrongFlavour { what: "big-endian" });
    }
    Ok(())
}

/// The usual name of an ELF machine number.
fn machine_name(machine: u16) -> &'static str {
    match machine {
        0 => "none",
        3 => "x86",
        8 => "MIPS",
        20 => "PowerPC",
        21 => "PowerPC64",
        40 => "ARM",
        62 => "x86-64",
        183 => "AArch64",
        243 => "RISC-V",
        _ => "another architecture",
    }
}

fn section_names(file: &ElfFile64<'_, LittleEndian>) -> String {
    let names: Vec<&str> = file
        .sections()
        .filter_map(|s| s.name().ok())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The read-only data sections referred to so far, numbered in order of first reference.
#[derive(Debug, Default)]
struct ReadOnlyAreas {
    sections: Vec<SectionIndex>,
    data: Vec<Vec<u8>>,
}

impl ReadOnlyAreas {
    /// The area of section `index`, adding it on first reference.
    fn area(&mut self, index: SectionIndex, data: &[u8]) -> Result<Area, String> {
        let n = match self.sections.iter().position(|&s| s == index) {
            Some(n) => n,
            None => {
                self.sections.push(index);
                self.data.push(data.to_vec());
                self.sections.len() - 1
            }
        };
        u32::try_from(n)
            .map(Area::ReadOnly)
            .map_err(|_| "too many read-only data sections".to_owned())
    }
}

/// Loads the function in `section`, if the object has that section.
fn load_function(
    file: &ElfFile64<'_, LittleEndian>,
    section: &'static str,
    limits: &Limits,
    read_only: &mut ReadOnlyAreas,
) -> Result<Option<Function>, LoadError> {
    let Some(sect) = file.section_by_name(section) else {
        return Ok(None);
    };
    let bad = |pc: usize, reason: String| LoadError::BadInstruction {
        section: section.to_owned(),
        pc,
        reason,
    };
    let bytes = sect
        .data()
        .map_err(|e| bad(0, format!("the section cannot be read: {e}")))?;
    if bytes.len() % INSN_BYTES != 0 {
        return Err(bad(
            bytes.len() / INSN_BYTES,
            format!(
                "the section is {} bytes, not a whole number of 8-byte instructions",
                bytes.len()
            ),
        ));
    }
    let slots = bytes.len() / INSN_BYTES;
    if slots > limits.max_instructions {
        return Err(LoadError::TooLarge {
            what: format!("section {section} (instructions)"),
            size: slots,
            limit: limits.max_instructions,
        });
    }
    let mut code = decode_all(bytes);
    for (offset, reloc) in sect.relocations() {
        let pc = usize::try_from(offset).unwrap_or(usize::MAX) / INSN_BYTES;
        relocate(file, section, &mut code, pc, &reloc, read_only)?;
    }
    verify(section, &code)?;
    Ok(Some(Function { section, code }))
}

/// Applies one relocation at instruction `pc`: a `lddw` of an address in read-only data gets
/// that address in the program's address space; everything else is refused.
fn relocate(
    file: &ElfFile64<'_, LittleEndian>,
    section: &'static str,
    code: &mut [Insn],
    pc: usize,
    reloc: &object::Relocation,
    read_only: &mut ReadOnlyAreas,
) -> Result<(), LoadError> {
    let refuse = |reason: String| LoadError::Relocation {
        section: section.to_owned(),
        pc,
        reason,
    };
    let RelocationTarget::Symbol(symbol_index) = reloc.target() else {
        return Err(refuse("a relocation without a symbol".to_owned()));
    };
    let symbol = file
        .symbol_by_index(symbol_index)
        .map_err(|e| refuse(format!("a relocation names a missing symbol: {e}")))?;
    let symbol_name = symbol.name().unwrap_or("?").to_owned();
    let r_type = match reloc.flags() {
        RelocationFlags::Elf { r_type } => r_type,
        _ => 0,
    };
    if r_type == R_BPF_64_32 {
        return Err(refuse(format!(
            "calls function {symbol_name}, which was not inlined; device programs are one function per section: declare helpers `static __always_inline`"
        )));
    }
    let Some(target_index) = symbol.section_index() else {
        return Err(refuse(format!(
            "refers to {symbol_name}, which the object does not define (an extern or a kernel symbol); device programs can use only the quarry_* helpers"
        )));
    };
    let target = file
        .section_by_index(target_index)
        .map_err(|e| refuse(format!("a relocation names a missing section: {e}")))?;
    let target_name = target.name().unwrap_or("?").to_owned();
    if target_name == ".maps" || target_name == "maps" {
        return Err(refuse(format!(
            "uses BPF map {symbol_name}; device programs have no maps: keep what must last between chunks in ctx->state"
        )));
    }
    if !target_name.starts_with(".rodata") {
        return Err(refuse(format!(
            "uses {symbol_name} in section {target_name}; device programs have no writable globals: keep what must last between chunks in ctx->state, and make constants `const`"
        )));
    }
    if r_type != R_BPF_64_64 || code.get(pc).map(|i| i.op) != Some(LDDW) || pc + 1 >= code.len() {
        return Err(refuse(format!(
            "relocation type {r_type} against {symbol_name} is not a 64-bit address load (lddw); the VM applies only R_BPF_64_64 there"
        )));
    }
    let data = target
        .data()
        .map_err(|e| refuse(format!("section {target_name} cannot be read: {e}")))?;
    let area = read_only.area(target_index, data).map_err(refuse)?;
    // REL relocations keep the addend in the instruction's immediate.
    let addend = i64::from(code[pc].imm);
    let offset = i64::try_from(symbol.address())
        .ok()
        .and_then(|a| a.checked_add(addend))
        .and_then(|o| u64::try_from(o).ok())
        .filter(|&o| o <= u64::from(u32::MAX))
        .ok_or_else(|| {
            refuse(format!(
                "the address of {symbol_name} (+{addend}) is outside section {target_name}"
            ))
        })?;
    let address = area.base() | offset;
    let [b0, b1, b2, b3, b4, b5, b6, b7] = address.to_le_bytes();
    code[pc].imm = i32::from_le_bytes([b0, b1, b2, b3]);
    code[pc + 1].imm = i32::from_le_bytes([b4, b5, b6, b7]);
    code[pc].src = 0;
    Ok(())
}
