// SPDX-License-Identifier: Apache-2.0
//! Profile loading: every shipped profile loads, names match, sources are cited, and bad
//! profiles are refused with errors that name the fix.

use super::*;

#[test]
fn every_builtin_profile_loads_under_its_own_name() {
    assert_eq!(BUILTIN.len(), NAMES.len());
    for (name, _) in BUILTIN {
        assert!(NAMES.contains(name), "{name} missing from NAMES");
        let profile = Profile::builtin(name).unwrap();
        assert_eq!(profile.name(), *name);
        assert_eq!(profile.device().name(), *name);
        assert!(!profile.summary().is_empty());
    }
}

#[test]
fn shipped_files_match_the_embedded_copies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        NAMES.len(),
        "every file in sim/profiles is built in"
    );
    for file in files {
        let from_file = Profile::from_file(&file).unwrap();
        assert_eq!(from_file, Profile::builtin(from_file.name()).unwrap());
    }
}

#[test]
fn every_figure_in_a_shipped_profile_cites_a_source() {
    // Inside a section, every `key = value` line comes after a `# source:` comment in that
    // section, or in the comment block right above the section header.
    for (name, text) in BUILTIN {
        let mut cited = false;
        let mut block_cites = false;
        let mut in_section = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_section = true;
                cited = block_cites;
                block_cites = false;
            } else if line.starts_with("# source:") {
                cited = true;
                block_cites = true;
            } else if line.starts_with('#') {
                // A comment line continues the current block.
            } else {
                block_cites = false;
                if in_section && line.contains(" = ") {
                    assert!(cited, "{name}: `{line}` has no # source: comment above it");
                }
            }
        }
    }
}

#[test]
fn unknown_builtin_names_list_the_known_ones() {
    let err = Profile::builtin("smart-ssd").unwrap_err().to_string();
    assert!(err.contains("\"smart-ssd\""), "{err}");
    assert!(err.contains("smartssd, scaleflux-csd3000"), "{err}");
}

#[test]
fn unknown_fields_are_refused_with_the_key_named() {
    let text = BUILTIN[0].1.replace("lanes = 4", "lanes = 4\nwidth = 4");
    let err = Profile::from_toml("edited", &text).unwrap_err().to_string();
    assert!(err.contains("edited"), "{err}");
    assert!(err.contains("unknown field `width`"), "{err}");
}

#[test]
fn out_of_range_figures_name_profile_key_and_fix() {
    let text = BUILTIN[0].1.replace("generation = 3", "generation = 2");
    let err = Profile::from_toml("x", &text).unwrap_err().to_string();
    assert!(err.contains("smartssd: link.generation = 2"), "{err}");
    assert!(err.contains("3, 4 or 5"), "{err}");

    let text = BUILTIN[0]
        .1
        .replace("efficiency = 0.86", "efficiency = 1.5");
    let err = Profile::from_toml("x", &text).unwrap_err().to_string();
    assert!(err.contains("smartssd: link"), "{err}");
    assert!(err.contains("(0, 1]"), "{err}");

    let text = BUILTIN[0]
        .1
        .replace("channel_mb_s = 400.0", "channel_mb_s = -1.0");
    let err = Profile::from_toml("x", &text).unwrap_err().to_string();
    assert!(err.contains("flash.channel_mb_s"), "{err}");
}

#[test]
fn kernel_rates_must_be_one_form_or_the_other() {
    let text = BUILTIN[0].1.replacen(
        "ii = 1\nclock_mhz = 300.0",
        "gb_s = 1.0\nii = 1\nclock_mhz = 300.0",
        1,
    );
    let err = Profile::from_toml("x", &text).unwrap_err().to_string();
    assert!(err.contains("compute.kernels.grep"), "{err}");
    assert!(
        err.contains("either gb_s, or ii, clock_mhz and lanes"),
        "{err}"
    );
}

#[test]
fn sections_must_fit_the_kind() {
    let host = NAMES.iter().position(|n| *n == "xeon-host").unwrap();
    let text = format!("{}\n[queue]\ndepth = 4\n", BUILTIN[host].1);
    let err = Profile::from_toml("x", &text).unwrap_err().to_string();
    assert!(
        err.contains("[queue]") && err.contains("remove the section"),
        "{err}"
    );

    let text = BUILTIN[0].1.replace("kind = \"csd\"", "kind = \"gpu\"");
    let err = Profile::from_toml("x", &text).unwrap_err().to_string();
    assert!(err.contains("[flash]"), "{err}");
}

#[test]
fn models_refuse_profiles_of_another_kind() {
    let gpu = Profile::builtin("a100-pcie").unwrap();
    let err = Csd::from_profile(&gpu).unwrap_err().to_string();
    assert!(err.contains("a100-pcie describes a gpu device"), "{err}");
    assert!(FpgaCard::from_profile(&gpu).is_err());
    assert!(HostCpu::from_profile(&gpu).is_err());
    assert!(Gpu::from_profile(&gpu).is_ok());
}
