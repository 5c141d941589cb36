// SPDX-License-Identifier: Apache-2.0
//! Placement policies: where a job may run. Parsed from the `x-quarry-backend-class` header
//! and from function and trigger settings.
//!
//! Text forms (case-insensitive): `auto`; a device class alone (`gpu`), which requires it;
//! `require:CLASS`; `prefer:CLASS`; `backend:ID`, which pins one backend by its id (as
//! `quarry devices` lists them, e.g. `opencl-cpu-0`, `native`). Classes are `cpu`, `gpu`,
//! `fpga`, `csd`.

use std::fmt;
use std::str::FromStr;

use crate::backend::{BackendId, DeviceClass, UnknownDeviceClass};

/// Where a job may run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// Wherever the cost model expects it to finish first.
    #[default]
    Auto,
    /// Only on a backend of this class; the job fails if none holds a variant.
    Require(DeviceClass),
    /// On the fastest backend of this class if one holds a variant, otherwise as `Auto`.
    Prefer(DeviceClass),
    /// Only on the backend with this id (tests, benchmarks, and pinning a job to a device).
    Backend(BackendId),
}

impl Policy {
    /// Whether a backend of `class` may run the job at all.
    pub fn allows(&self, class: DeviceClass) -> bool {
        match self {
            Self::Require(c) => *c == class,
            Self::Auto | Self::Prefer(_) | Self::Backend(_) => true,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Require(c) => write!(f, "require:{c}"),
            Self::Prefer(c) => write!(f, "prefer:{c}"),
            Self::Backend(id) => write!(f, "backend:{id}"),
        }
    }
}

/// Text that is not a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid backend policy {given:?}: {reason}; expected auto, a device class (cpu, gpu, fpga, csd), require:CLASS, prefer:CLASS or backend:ID"
)]
pub struct PolicyError {
    /// The text given.
    pub given: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let class = |word: &str| {
            word.parse::<DeviceClass>()
                .map_err(|e: UnknownDeviceClass| PolicyError {
                    given: s.to_owned(),
                    reason: e.to_string(),
                })
        };
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        match text.split_once(':') {
            None => class(text).map(Self::Require),
            Some((mode, word)) if mode.trim().eq_ignore_ascii_case("require") => {
                class(word).map(Self::Require)
            }
            Some((mode, word)) if mode.trim().eq_ignore_ascii_case("prefer") => {
                class(word).map(Self::Prefer)
            }
            Some((mode, id)) if mode.trim().eq_ignore_ascii_case("backend") => {
                let id = id.trim();
                if id.is_empty() {
                    return Err(PolicyError {
                        given: s.to_owned(),
                        reason: "backend: needs a backend id (`quarry devices` lists them)"
                            .to_owned(),
                    });
                }
                Ok(Self::Backend(BackendId(id.to_owned())))
            }
            Some((mode, _)) => Err(PolicyError {
                given: s.to_owned(),
                reason: format!(
                    "unknown mode {:?} (use require, prefer or backend)",
                    mode.trim()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_form_parses() {
        let cases = [
            ("auto", Policy::Auto),
            ("AUTO", Policy::Auto),
            ("gpu", Policy::Require(DeviceClass::Gpu)),
            (" require:fpga ", Policy::Require(DeviceClass::Fpga)),
            ("prefer:csd", Policy::Prefer(DeviceClass::Csd)),
            ("Prefer:CPU", Policy::Prefer(DeviceClass::Cpu)),
            (
                "backend:opencl-cpu-0",
                Policy::Backend(BackendId("opencl-cpu-0".to_owned())),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Policy>(), Ok(want), "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        for class in DeviceClass::ALL {
            for policy in [Policy::Auto, Policy::Require(class), Policy::Prefer(class)] {
                assert_eq!(policy.to_string().parse::<Policy>(), Ok(policy));
            }
        }
    }

    #[test]
    fn bad_text_names_the_problem_and_the_forms() {
        let err = "tpu".parse::<Policy>().unwrap_err();
        assert!(
            err.to_string().contains("unknown device class \"tpu\""),
            "{err}"
        );
        assert!(err.to_string().contains("prefer:CLASS"), "{err}");
        let err = "want:gpu".parse::<Policy>().unwrap_err();
        assert!(err.to_string().contains("unknown mode \"want\""), "{err}");
        assert!("".parse::<Policy>().is_err());
        assert!("prefer:".parse::<Policy>().is_err());
    }
}
