// SPDX-License-Identifier: Apache-2.0
//! The one error type of the simulator. Every message names the profile, device or figure at
//! fault and says what would fix it.

use std::path::PathBuf;

/// What went wrong while loading a profile or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A profile file could not be read.
    #[error("failed to read device profile {path}")]
    ReadProfile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A profile is not valid TOML, has an unknown field, or misses a required one.
    #[error("failed to parse device profile {profile}: {source}")]
    ParseProfile {
        /// The profile's name or file.
        profile: String,
        /// The parser's message, which names the key and line.
        #[source]
        source: toml::de::Error,
    },
    /// No built-in profile has this name.
    #[error("no built-in device profile is named {name:?}; the built-in profiles are: {known}")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// A figure is out of its valid range.
    #[error("{owner}: {key} = {value} is invalid: {expected}")]
    InvalidFigure {
        /// The profile or model the figure belongs to.
        owner: String,
        /// The key, as written in the profile.
        key: String,
        /// The value given.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A profile describes another kind of device than the model it was given to.
    #[error(
        "device profile {profile} describes a {actual} device; a {wanted} model needs a profile with kind = \"{wanted}\""
    )]
    WrongKind {
        /// The profile.
        profile: String,
        /// Its kind.
        actual: &'static str,
        /// The kind the caller needs.
        wanted: &'static str,
    },
    /// The device has no rate for this kernel.
    #[error(
        "device {device} has no rate for kernel {kernel:?} (it has: {known}); add [compute.kernels.{kernel}] to its profile"
    )]
    UnknownKernel {
        /// The device.
        device: String,
        /// The kernel asked for.
        kernel: String,
        /// The kernels it has rates for, comma separated.
        known: String,
    },
    /// The device's command queue holds as many commands as its depth allows.
    #[error(
        "command queue of device {device} is full ({depth} commands outstanding); submit later or raise [queue] depth in its profile"
    )]
    QueueFull {
        /// The device.
        device: String,
        /// Its queue depth.
        depth: u32,
    },
}

impl SimError {
    /// Whether submitting the same work later can succeed (the queue was full).
    pub fn is_overload(&self) -> bool {
        matches!(self, Self::QueueFull { .. })
    }

    /// An [`SimError::InvalidFigure`].
    pub(crate) fn figure(
        owner: &str,
        key: &str,
        value: impl std::fmt::Display,
        expected: &'static str,
    ) -> Self {
        Self::InvalidFigure {
            owner: owner.to_owned(),
            key: key.to_owned(),
            value: value.to_string(),
            expected,
        }
    }
}
