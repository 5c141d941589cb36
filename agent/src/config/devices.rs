// SPDX-License-Identifier: Apache-2.0
//! `[[devices]]` and `[[placement]]`: simulated devices the node offloads to, and buckets whose
//! objects live on a device's namespace.
//!
//! A device names a built-in `quarry-sim` profile (`profile = "smartssd"`) or a profile file of
//! the same schema (`profile_file`); its `kind` must match the profile's. A placement puts a
//! bucket on a CSD: its objects' bytes stay in the local store for real, and the cost model
//! accounts them on the drive (a pushdown reads them at internal bandwidth; a host read pays
//! the drive's link).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use quarry_offload::{BackendId, DeviceClass, SimDeviceConfig};
use quarry_sim::Profile;
use serde::{Deserialize, Serialize};

/// Backend ids the node gives its own backends; a device may not take one.
const RESERVED_IDS: &[&str] = &["native", "wasm", "scheduler"];

/// The kind of a simulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A computational-storage drive.
    Csd,
    /// An FPGA accelerator card.
    Fpga,
    /// A GPU.
    Gpu,
}

impl DeviceKind {
    /// The profile `kind` it needs (`csd`, `fpga`, `gpu`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csd => "csd",
            Self::Fpga => "fpga",
            Self::Gpu => "gpu",
        }
    }

    /// The device class its backend has.
    pub fn class(self) -> DeviceClass {
        match self {
            Self::Csd => DeviceClass::Csd,
            Self::Fpga => DeviceClass::Fpga,
            Self::Gpu => DeviceClass::Gpu,
        }
    }
}

/// One `[[devices]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// Its backend id (`x-quarry-backend`, `backend:ID` policies, metrics): lowercase letters,
    /// digits and `-`.
    pub id: String,
    /// `csd`, `fpga` or `gpu`.
    pub kind: DeviceKind,
    /// A built-in profile name (`smartssd`, `scaleflux-csd3000`, `ngd-newport`,
    /// `generic-gen5`, `alveo-u250`, `a100-pcie`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// A profile file of the same schema, instead of `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_file: Option<PathBuf>,
    /// Hold each job until its simulated time has passed on the wall clock (off: the time is
    /// reported, not waited out, so tests and CI run at the real kernels' speed).
    #[serde(default)]
    pub pace: bool,
}

/// One `[[placement]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementEntry {
    /// The bucket.
    pub bucket: String,
    /// The id of a declared `csd` device.
    pub device: String,
}

impl DeviceEntry {
    /// The entry's backend id.
    pub fn backend_id(&self) -> BackendId {
        BackendId(self.id.clone())
    }

    /// The backend settings beyond the profile.
    pub fn sim_config(&self) -> SimDeviceConfig {
        SimDeviceConfig { pace: self.pace }
    }

    /// Loads and checks its profile; the message names the entry, the key and the fix.
    pub fn load_profile(&self) -> Result<Profile, String> {
        let at = format!("devices entry {:?}", self.id);
        let profile = match (&self.profile, &self.profile_file) {
            (Some(name), None) => Profile::builtin(name).map_err(|e| format!("{at}: {e}"))?,
            (None, Some(path)) => Profile::from_file(path)
                .map_err(|e| format!("{at}: profile_file: {}", error_chain(&e)))?,
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{at}: give either profile or profile_file, not both"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "{at}: needs profile = \"NAME\" (built-in: {}) or profile_file = \"/path.toml\"",
                    device_profiles().join(", ")
                ));
            }
        };
        let actual = profile.device().kind_name();
        if actual != self.kind.as_str() {
            return Err(format!(
                "{at}: kind = {:?} but profile {} describes a {actual} device; set kind = {actual:?} or pick a {} profile",
                self.kind.as_str(),
                profile.name(),
                self.kind.as_str()
            ));
        }
        Ok(profile)
    }
}

/// The built-in profiles that describe devices (not the host).
fn device_profiles() -> Vec<&'static str> {
    Profile::names()
        .iter()
        .copied()
        .filter(|n| Profile::builtin(n).is_ok_and(|p| p.device().kind_name() != "host"))
        .collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Every problem with the devices and placements, each naming the entry and the fix.
pub(super) fn problems(devices: &[DeviceEntry], placement: &[PlacementEntry]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for d in devices {
        let valid_id = !d.id.is_empty()
            && d.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_id {
            out.push(format!(
                "devices entry {:?}: id must be lowercase letters, digits and '-' (e.g. \"csd0\")",
                d.id
            ));
        } else if RESERVED_IDS.contains(&d.id.as_str()) || d.id.starts_with("opencl-") {
            out.push(format!(
                "devices entry {:?}: the id is taken by the node's own backends ({}, opencl-*); pick another",
                d.id,
                RESERVED_IDS.join(", ")
            ));
        }
        if !ids.insert(d.id.as_str()) {
            out.push(format!(
                "devices: id {:?} is declared more than once; give each device its own id",
                d.id
            ));
        }
        if let Err(problem) = d.load_profile() {
            out.push(problem);
        }
    }
    let kinds: BTreeMap<&str, DeviceKind> =
        devices.iter().map(|d| (d.id.as_str(), d.kind)).collect();
    let mut placed = BTreeSet::new();
    for p in placement {
        match kinds.get(p.device.as_str()) {
            None => out.push(format!(
                "placement of bucket {:?}: device {:?} is not declared; add a [[devices]] entry with id = {:?} or name one of: {}",
                p.bucket,
                p.device,
                p.device,
                if kinds.is_empty() {
                    "(none declared)".to_owned()
                } else {
                    kinds.keys().copied().collect::<Vec<_>>().join(", ")
                }
            )),
            Some(kind) if *kind != DeviceKind::Csd => out.push(format!(
                "placement of bucket {:?}: device {:?} is a {} and holds no data; place buckets on a csd",
                p.bucket,
                p.device,
                kind.as_str()
            )),
            Some(_) => {}
        }
        if p.bucket.is_empty() {
            out.push("placement: bucket is empty; name a bucket".to_owned());
        }
        if !placed.insert(p.bucket.as_str()) {
            out.push(format!(
                "placement: bucket {:?} is placed more than once; keep one entry",
                p.bucket
            ));
        }
    }
    out
}

/// The placement as the hooks take it: bucket -> device backend id.
pub fn placement_map(placement: &[PlacementEntry]) -> BTreeMap<String, BackendId> {
    placement
        .iter()
        .map(|p| (p.bucket.clone(), BackendId(p.device.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csd(id: &str, profile: &str) -> DeviceEntry {
        DeviceEntry {
            id: id.to_owned(),
            kind: DeviceKind::Csd,
            profile: Some(profile.to_owned()),
            profile_file: None,
            pace: false,
        }
    }

    fn place(bucket: &str, device: &str) -> PlacementEntry {
        PlacementEntry {
            bucket: bucket.to_owned(),
            device: device.to_owned(),
        }
    }

    #[test]
    fn a_declared_csd_with_a_bucket_on_it_is_valid() {
        assert!(problems(&[csd("csd0", "smartssd")], &[place("logs", "csd0")]).is_empty());
    }

    #[test]
    fn an_unknown_profile_names_the_built_in_ones() {
        let found = problems(&[csd("csd0", "smart-ssd")], &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("\"smart-ssd\""), "{found:?}");
        assert!(
            found[0].contains("smartssd, scaleflux-csd3000"),
            "{found:?}"
        );
    }

    #[test]
    fn kind_must_match_the_profile() {
        let mut gpu = csd("gpu0", "smartssd");
        gpu.kind = DeviceKind::Gpu;
        let found = problems(&[gpu], &[]);
        assert!(found[0].contains("describes a csd device"), "{found:?}");
    }

    #[test]
    fn duplicate_ids_reserved_ids_and_bad_placements_are_each_reported() {
        let mut fpga = csd("fpga0", "alveo-u250");
        fpga.kind = DeviceKind::Fpga;
        let devices = [
            csd("csd0", "smartssd"),
            csd("csd0", "ngd-newport"),
            csd("native", "smartssd"),
            fpga,
        ];
        let placements = [
            place("logs", "csd9"),
            place("logs", "csd0"),
            place("frames", "fpga0"),
        ];
        let found = problems(&devices, &placements);
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(
            found
                .iter()
                .any(|p| p.contains("more than once") && p.contains("csd0"))
        );
        assert!(found.iter().any(|p| p.contains("taken by the node")));
        assert!(found.iter().any(|p| p.contains("\"csd9\" is not declared")));
        assert!(
            found
                .iter()
                .any(|p| p.contains("\"logs\" is placed more than once"))
        );
        assert!(found.iter().any(|p| p.contains("holds no data")));
    }

    #[test]
    fn a_profile_is_required_once() {
        let mut both = csd("csd0", "smartssd");
        both.profile_file = Some(PathBuf::from("/nonexistent.toml"));
        let mut neither = csd("csd1", "smartssd");
        neither.profile = None;
        let found = problems(&[both, neither], &[]);
        assert!(found.iter().any(|p| p.contains("not both")), "{found:?}");
        assert!(
            found.iter().any(|p| p.contains("built-in: smartssd")),
            "{found:?}"
        );
        let mut missing = csd("csd2", "smartssd");
        missing.profile = None;
        missing.profile_file = Some(PathBuf::from("/nonexistent/quarry-profile.toml"));
        let found = problems(&[missing], &[]);
        assert!(
            found[0].contains("/nonexistent/quarry-profile.toml"),
            "{found:?}"
        );
    }

    #[test]
    fn entries_parse_from_toml() {
        #[derive(Deserialize)]
        struct File {
            devices: Vec<DeviceEntry>,
            placement: Vec<PlacementEntry>,
        }
        let text = r#"
            [[devices]]
            id = "csd0"
            kind = "csd"
            profile = "smartssd"
            pace = true

            [[placement]]
            bucket = "logs"
            device = "csd0"
        "#;
        let file: File = toml::from_str(text).unwrap();
        assert!(file.devices[0].sim_config().pace);
        assert_eq!(
            placement_map(&file.placement)["logs"],
            BackendId("csd0".to_owned())
        );
        let bad = "[[devices]]\nid = \"c\"\nkind = \"ssd\"\nprofile = \"smartssd\"\n";
        assert!(toml::from_str::<File>(bad).is_err());
    }
}
