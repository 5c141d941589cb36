// SPDX-License-Identifier: Apache-2.0
//! Device profiles: TOML files in `sim/profiles/`, also compiled into the crate so the daemon
//! has them without any file. Each figure in a shipped profile carries a `# source:` comment
//! (product sheet or paper, or "assumption" and why).
//!
//! A profile names its `kind` (`csd`, `fpga`, `gpu`, `host`) and gives the sections that kind
//! needs; unknown keys and sections a kind does not have are refused.

mod schema;

use std::path::Path;

use crate::csd::Csd;
use crate::error::SimError;
use crate::fpga::FpgaCard;
use crate::gpu::Gpu;
use crate::host::HostCpu;

/// The built-in profiles: name and TOML text.
const BUILTIN: &[(&str, &str)] = &[
    ("smartssd", include_str!("../../profiles/smartssd.toml")),
    (
        "scaleflux-csd3000",
        include_str!("../../profiles/scaleflux-csd3000.toml"),
    ),
    (
        "ngd-newport",
        include_str!("../../profiles/ngd-newport.toml"),
    ),
    (
        "generic-gen5",
        include_str!("../../profiles/generic-gen5.toml"),
    ),
    ("alveo-u250", include_str!("../../profiles/alveo-u250.toml")),
    ("a100-pcie", include_str!("../../profiles/a100-pcie.toml")),
    ("xeon-host", include_str!("../../profiles/xeon-host.toml")),
];

const NAMES: &[&str] = &[
    "smartssd",
    "scaleflux-csd3000",
    "ngd-newport",
    "generic-gen5",
    "alveo-u250",
    "a100-pcie",
    "xeon-host",
];

/// A device model built from a profile.
#[derive(Clone, Debug, PartialEq)]
pub enum Device {
    /// A computational-storage drive.
    Csd(Csd),
    /// An FPGA accelerator card.
    Fpga(FpgaCard),
    /// A GPU.
    Gpu(Gpu),
    /// A host CPU (for host-side plans).
    Host(HostCpu),
}

impl Device {
    /// The name of the profile it was built from.
    pub fn name(&self) -> &str {
        match self {
            Self::Csd(d) => d.name(),
            Self::Fpga(d) => d.name(),
            Self::Gpu(d) => d.name(),
            Self::Host(d) => d.name(),
        }
    }

    /// The profile `kind` this device comes from: `csd`, `fpga`, `gpu` or `host`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Csd(_) => "csd",
            Self::Fpga(_) => "fpga",
            Self::Gpu(_) => "gpu",
            Self::Host(_) => "host",
        }
    }
}

/// A loaded and checked device profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    name: String,
    summary: String,
    device: Device,
}

impl Profile {
    /// The names of the built-in profiles.
    pub fn names() -> &'static [&'static str] {
        NAMES
    }

    /// The built-in profile called `name`.
    pub fn builtin(name: &str) -> Result<Self, SimError> {
        let (_, text) =
            BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| SimError::UnknownProfile {
                    name: name.to_owned(),
                    known: NAMES.join(", "),
                })?;
        Self::from_toml(name, text)
    }

    /// Every built-in profile, in [`Profile::names`] order.
    pub fn all_builtin() -> Result<Vec<Self>, SimError> {
        NAMES.iter().map(|n| Self::builtin(n)).collect()
    }

    /// Parses and checks a profile; `origin` (a name or file) appears in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Self, SimError> {
        let raw: schema::RawProfile =
            toml::from_str(text).map_err(|source| SimError::ParseProfile {
                profile: origin.to_owned(),
                source,
            })?;
        let name = raw.name.clone();
        let summary = raw.summary.clone();
        let device = raw.into_device()?;
        Ok(Self {
            name,
            summary,
            device,
        })
    }

    /// Reads, parses and checks the profile in `path`.
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::ReadProfile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&path.display().to_string(), &text)
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line on what the profile describes.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The model it describes.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests;
