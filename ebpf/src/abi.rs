// SPDX-License-Identifier: Apache-2.0
//! The helper ABI of device programs, as `include/quarry_bpf.h` declares it to C: entry
//! sections, the context layout, helper ids and the program's address space.

/// The section of the function called once per chunk (required).
pub const CHUNK_SECTION: &str = "quarry/chunk";
/// The section of the function called once after the last chunk (optional).
pub const FINISH_SECTION: &str = "quarry/finish";

/// A helper a program may call, by id (`call ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    /// `quarry_emit(buf, len)`: appends bytes to the output.
    Emit,
    /// `quarry_param(name, name_len, buf, buf_len)`: copies a parameter's value.
    Param,
    /// `quarry_emit_u64(value)`: appends a number's decimal text to the output.
    EmitU64,
}

impl Helper {
    /// Every helper, in id order.
    pub const ALL: [Self; 3] = [Self::Emit, Self::Param, Self::EmitU64];

    /// The helper with call id `id`.
    pub fn from_id(id: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.id() == id)
    }

    /// Its call id.
    pub fn id(self) -> i32 {
        match self {
            Self::Emit => 1,
            Self::Param => 2,
            Self::EmitU64 => 3,
        }
    }

    /// Its C name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Emit => "quarry_emit",
            Self::Param => "quarry_param",
            Self::EmitU64 => "quarry_emit_u64",
        }
    }

    /// `1 quarry_emit, 2 quarry_param, ...`, for errors.
    pub fn listing() -> String {
        Self::ALL
            .iter()
            .map(|h| format!("{} {}", h.id(), h.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The memory areas of a program's address space. An address is `area << 32 | offset`, so
/// every access names its area and is checked against that area's length alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The `struct quarry_ctx` of the call (read-only).
    Context,
    /// The chunk's bytes (read-only).
    Input,
    /// The job's state (read-write, kept between calls).
    State,
    /// The stack (read-write).
    Stack,
    /// The `n`-th read-only data section of the object (string constants, tables).
    ReadOnly(u32),
}

/// The area number of the first read-only data section.
const FIRST_READ_ONLY: u64 = 16;

impl Area {
    /// The address of the area's first byte.
    pub fn base(self) -> u64 {
        let number = match self {
            Self::Context => 1,
            Self::Input => 2,
            Self::State => 3,
            Self::Stack => 4,
            Self::ReadOnly(n) => FIRST_READ_ONLY + u64::from(n),
        };
        number << 32
    }

    /// The area an address falls in, if any, and the offset into it.
    pub fn of(addr: u64) -> Option<(Self, usize)> {
        let offset = usize::try_from(addr & 0xffff_ffff).ok()?;
        let area = match addr >> 32 {
            1 => Self::Context,
            2 => Self::Input,
            3 => Self::State,
            4 => Self::Stack,
            n if n >= FIRST_READ_ONLY => Self::ReadOnly(u32::try_from(n - FIRST_READ_ONLY).ok()?),
            _ => return None,
        };
        Some((area, offset))
    }

    /// Whether a program may write it.
    pub fn writable(self) -> bool {
        matches!(self, Self::State | Self::Stack)
    }

    /// Its name in errors.
    pub fn describe(self) -> String {
        match self {
            Self::Context => "the context".to_owned(),
            Self::Input => "the chunk".to_owned(),
            Self::State => "the job state".to_owned(),
            Self::Stack => "the stack".to_owned(),
            Self::ReadOnly(n) => format!("read-only data section {n}"),
        }
    }
}

/// Byte offsets of the fields of `struct quarry_ctx`.
pub mod ctx {
    /// `data`: address of the chunk.
    pub const DATA: usize = 0;
    /// `len`: the chunk's length.
    pub const LEN: usize = 8;
    /// `state`: address of the job state.
    pub const STATE: usize = 16;
    /// `state_len`: its size.
    pub const STATE_LEN: usize = 24;
    /// `chunk`: index of this chunk (the chunk count in finish).
    pub const CHUNK: usize = 32;
    /// The size of the structure.
    pub const SIZE: usize = 40;
}

/// Stack bytes per call frame (as in the kernel's eBPF).
pub const FRAME_BYTES: usize = 512;
/// Call frames deep a program may go (the entry function counts as one).
pub const MAX_FRAMES: usize = 8;
