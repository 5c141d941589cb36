// SPDX-License-Identifier: Apache-2.0
//! Errors of the OpenCL backend.

/// The OpenCL runtime cannot be used on this node (no library, no platform, no device).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OpenCL is unavailable: {reason}")]
pub struct OpenClUnavailable {
    /// Why, and what to install or configure.
    pub reason: String,
}

/// An OpenCL call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OpenCL: failed to {operation}{}{}", code_suffix(.code_name, *.code), detail_suffix(.detail))]
pub struct ClError {
    /// What was being done (`"create buffer of 4096 bytes"`, `"enqueue kernel grep_count"`).
    pub operation: String,
    /// The OpenCL error code (0 when a host-side check failed).
    pub code: i32,
    /// The code's name (`CL_OUT_OF_RESOURCES`).
    pub code_name: String,
    /// More context, such as a build log.
    pub detail: String,
}

fn code_suffix(name: &str, code: i32) -> String {
    if code == 0 {
        String::new()
    } else {
        format!(" ({name}, {code})")
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl ClError {
    /// An error of `operation` with the library's code.
    pub fn new(operation: impl Into<String>, code: i32) -> Self {
        Self {
            operation: operation.into(),
            code,
            code_name: opencl3::error_codes::ClError(code).to_string(),
            detail: String::new(),
        }
    }

    /// A failure found on the host side (no OpenCL error code).
    pub fn host(operation: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            code: 0,
            code_name: String::new(),
            detail: detail.into(),
        }
    }

    /// The same error with more context.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// Wraps an `opencl3` result's error with the operation that failed.
pub(crate) trait ClContext<T> {
    /// Names the failed operation.
    fn during(self, operation: impl FnOnce() -> String) -> Result<T, ClError>;
}

impl<T> ClContext<T> for Result<T, opencl3::error_codes::ClError> {
    fn during(self, operation: impl FnOnce() -> String) -> Result<T, ClError> {
        self.map_err(|e| ClError::new(operation(), e.0))
    }
}
