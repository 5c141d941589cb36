// SPDX-License-Identifier: Apache-2.0
//! One job of a program: its state area, kept from chunk to chunk, and the instructions it
//! has executed so far (a simulated device turns them into device time).

use std::sync::Arc;

use quarry_kernels::Params;

use crate::abi::{Area, FINISH_SECTION, FRAME_BYTES, MAX_FRAMES, ctx};
use crate::error::RunError;
use crate::limits::Limits;
use crate::program::{Function, Program};
use crate::vm::{Call, Memory, run};

/// A program's run over one input: [`Job::chunk`] for each chunk in order, then
/// [`Job::finish`].
#[derive(Debug)]
pub struct Job {
    program: Arc<Program>,
    limits: Limits,
    params: Params,
    state: Vec<u8>,
    stack: Vec<u8>,
    chunks: u64,
    instructions: u64,
}

impl Job {
    /// A job of `program` with checked `params`, its state zeroed.
    pub fn new(program: Arc<Program>, params: Params, limits: Limits) -> Self {
        Self {
            program,
            state: vec![0; limits.state_bytes],
            stack: vec![0; FRAME_BYTES * MAX_FRAMES],
            limits,
            params,
            chunks: 0,
            instructions: 0,
        }
    }

    /// Runs the per-chunk function on `chunk`, appending what it emits to `out`.
    pub fn chunk(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), RunError> {
        let program = Arc::clone(&self.program);
        self.call(program.chunk(), chunk, out)?;
        self.chunks += 1;
        Ok(())
    }

    /// Runs the final function, if the program has one, appending what it emits to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), RunError> {
        let program = Arc::clone(&self.program);
        match program.finish() {
            Some(function) => self.call(function, &[], out),
            None => Ok(()),
        }
    }

    /// Instructions executed so far (helpers count one per call plus one per 8 bytes copied).
    pub fn instructions(&self) -> u64 {
        self.instructions
    }

    /// The name of the program it runs.
    pub fn program_name(&self) -> &str {
        self.program.name()
    }

    /// Chunks run so far.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    fn call(
        &mut self,
        function: &Function,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RunError> {
        let section = function.section;
        let budget = if section == FINISH_SECTION {
            self.limits.budget_base
        } else {
            self.limits.budget(input.len())
        };
        let limits = self.limits;
        let over_budget = move || RunError::OverBudget {
            section,
            budget,
            chunk_len: input.len(),
            base: limits.budget_base,
            per_byte: if section == FINISH_SECTION {
                0
            } else {
                limits.budget_per_byte
            },
        };
        let mut context = [0_u8; ctx::SIZE];
        let len = u64::try_from(input.len()).unwrap_or(u64::MAX);
        let state_len = u64::try_from(self.state.len()).unwrap_or(u64::MAX);
        for (offset, value) in [
            (ctx::DATA, Area::Input.base()),
            (ctx::LEN, len),
            (ctx::STATE, Area::State.base()),
            (ctx::STATE_LEN, state_len),
            (ctx::CHUNK, self.chunks),
        ] {
            context[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
        }
        self.stack.fill(0);
        let mut memory = Memory {
            context,
            input,
            state: &mut self.state,
            stack: &mut self.stack,
            read_only: self.program.read_only(),
        };
        let mut call = Call {
            section,
            budget,
            over_budget: &over_budget,
            params: &self.params,
            out,
            max_output: self.limits.max_output_per_call,
        };
        let result = run(function, &mut memory, &mut call);
        let (code, executed) = match result {
            Ok(done) => done,
            Err(err) => {
                if matches!(err, RunError::OverBudget { .. }) {
                    self.instructions = self.instructions.saturating_add(budget);
                }
                return Err(err);
            }
        };
        self.instructions = self.instructions.saturating_add(executed);
        if code != 0 {
            return Err(RunError::Failed { section, code });
        }
        Ok(())
    }
}
