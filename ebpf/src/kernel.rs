// SPDX-License-Identifier: Apache-2.0
//! A device program as a kernel of the kernels contract: its shape, framing and parameters
//! are declared with the program, binding checks the parameters, and each job runs the
//! program in the VM chunk by chunk (the host frames the input, so records never straddle
//! chunks), counting the instructions it executes.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quarry_kernels::{
    BoundKernel, CpuRun, DeviceRun, Framing, Kernel, KernelError, KernelInfo, ParamSpec, Params,
    Shape,
};

use crate::error::RunError;
use crate::job::Job;
use crate::limits::Limits;
use crate::program::Program;

/// Checks bound parameters beyond their types (for a built-in program, by binding its CPU
/// twin, so both refuse the same values with the same words).
pub type ParamCheck = fn(&Params) -> Result<(), KernelError>;

/// What a program is as a kernel.
#[derive(Debug, Clone)]
pub struct KernelSpec {
    /// Its name.
    pub name: String,
    /// One line saying what it computes.
    pub summary: String,
    /// Its shape.
    pub shape: Shape,
    /// How its input is cut.
    pub framing: Framing,
    /// The parameters it reads with `quarry_param`.
    pub params: Cow<'static, [ParamSpec]>,
}

/// A loaded device program with its kernel description.
pub struct EbpfKernel {
    info: KernelInfo,
    framing: Framing,
    program: Arc<Program>,
    limits: Limits,
    check: Option<ParamCheck>,
    counter: Option<Arc<AtomicU64>>,
}

impl fmt::Debug for EbpfKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EbpfKernel")
            .field("name", &self.info.name)
            .field("framing", &self.framing)
            .field("instructions", &self.program.instruction_count())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl EbpfKernel {
    /// `program` as the kernel `spec` describes, run under `limits`.
    pub fn new(spec: KernelSpec, program: Arc<Program>, limits: Limits) -> Self {
        Self {
            info: KernelInfo {
                name: Cow::Owned(spec.name),
                summary: Cow::Owned(spec.summary),
                shape: spec.shape,
                params: spec.params,
                cpu: true,
                opencl: false,
            },
            framing: spec.framing,
            program,
            limits,
            check: None,
            counter: None,
        }
    }

    /// The same program as a kernel whose runs add the instructions they execute to
    /// `counter` as they go (a simulated device turns the count into device time).
    pub fn counting(&self, counter: Arc<AtomicU64>) -> Self {
        Self {
            info: self.info.clone(),
            framing: self.framing,
            program: Arc::clone(&self.program),
            limits: self.limits,
            check: self.check,
            counter: Some(counter),
        }
    }

    /// The same, with a check of bound parameters beyond their types.
    pub fn with_check(mut self, check: ParamCheck) -> Self {
        self.check = Some(check);
        self
    }

    /// The program.
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// The limits its jobs run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Its framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// A job with parameters `params` (checked against the declared ones, defaults filled
    /// in), as its concrete type: the simulated device reads its instruction count.
    pub fn start(&self, params: &Params) -> Result<EbpfRun, KernelError> {
        let checked = params.validate(&self.info)?;
        if let Some(check) = self.check {
            check(&checked)?;
        }
        Ok(EbpfRun::new(
            Arc::clone(&self.program),
            checked,
            self.limits,
            self.counter.clone(),
        ))
    }
}

impl Kernel for EbpfKernel {
    fn info(&self) -> &KernelInfo {
        &self.info
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        if let Some(check) = self.check {
            check(params)?;
        }
        Ok(Arc::new(BoundEbpf {
            program: Arc::clone(&self.program),
            framing: self.framing,
            params: params.clone(),
            limits: self.limits,
            counter: self.counter.clone(),
        }))
    }
}

/// A program with its parameters.
#[derive(Debug)]
struct BoundEbpf {
    program: Arc<Program>,
    framing: Framing,
    params: Params,
    limits: Limits,
    counter: Option<Arc<AtomicU64>>,
}

impl BoundKernel for BoundEbpf {
    fn framing(&self) -> Framing {
        self.framing
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        Some(Box::new(EbpfRun::new(
            Arc::clone(&self.program),
            self.params.clone(),
            self.limits,
            self.counter.clone(),
        )))
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        None
    }
}

/// One job of a program in the VM, as a [`CpuRun`].
#[derive(Debug)]
pub struct EbpfRun {
    job: Job,
    counter: Option<Arc<AtomicU64>>,
    counted: u64,
}

impl EbpfRun {
    fn new(
        program: Arc<Program>,
        params: Params,
        limits: Limits,
        counter: Option<Arc<AtomicU64>>,
    ) -> Self {
        Self {
            job: Job::new(program, params, limits),
            counter,
            counted: 0,
        }
    }

    /// Adds the instructions executed since the last report to the shared counter.
    fn report(&mut self) {
        let now = self.job.instructions();
        if let Some(counter) = &self.counter {
            counter.fetch_add(now - self.counted, Ordering::Relaxed);
        }
        self.counted = now;
    }

    /// Instructions executed so far.
    pub fn instructions(&self) -> u64 {
        self.job.instructions()
    }

    /// The underlying job.
    pub fn job(&self) -> &Job {
        &self.job
    }
}

impl CpuRun for EbpfRun {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), KernelError> {
        let result = self.job.chunk(chunk, out).map_err(|e| self.error(&e));
        self.report();
        result
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        let result = self.job.finish(out).map_err(|e| self.error(&e));
        self.report();
        result
    }
}

impl EbpfRun {
    fn error(&self, err: &RunError) -> KernelError {
        KernelError::Input(format!("eBPF program {}: {err}", self.job.program_name()))
    }
}
