// SPDX-License-Identifier: Apache-2.0
//! Validation: every problem in one pass, each naming its key and the fix.

use quarry_interceptor::config::StoreLimits;

use super::{ConfigError, EnvSource, QuarryConfig};
use crate::credentials::{ENV_ACCESS_KEY, ENV_SECRET_KEY};

/// hyper refuses read buffers below this size.
const MIN_HEADER_BYTES: u64 = 8 * 1024;

/// Checks a parsed configuration (with the environment's overrides) for consistency.
pub fn validate(cfg: &QuarryConfig, env: &dyn EnvSource) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, problem: String| {
        if !ok {
            problems.push(problem);
        }
    };
    let server = &cfg.server;
    check(
        // Port 0 asks the kernel for a free port, so both may say 127.0.0.1:0.
        server.listen != server.admin_listen || server.listen.port() == 0,
        format!(
            "server.listen and server.admin_listen are both {}; give the admin API its own port",
            server.listen
        ),
    );
    check(
        server.max_header_bytes.as_u64() >= MIN_HEADER_BYTES,
        format!(
            "server.max_header_bytes is {}; it must be at least 8KiB",
            server.max_header_bytes
        ),
    );
    check(
        !server.data_dir.as_os_str().is_empty(),
        "server.data_dir is empty; name a directory".to_owned(),
    );

    let limits = &cfg.s3.limits;
    check(
        (1..=1024).contains(&limits.max_key_len),
        format!(
            "s3.limits.max_key_len is {}; it must be between 1 and 1024 (S3's limit)",
            limits.max_key_len
        ),
    );
    check(
        limits.max_list_keys >= 1,
        "s3.limits.max_list_keys must be at least 1".to_owned(),
    );
    check(
        (1..=10_000).contains(&limits.max_delete_keys),
        format!(
            "s3.limits.max_delete_keys is {}; use 1 to 10000",
            limits.max_delete_keys
        ),
    );
    check(
        limits.max_xml_body.as_u64() >= 1024,
        format!(
            "s3.limits.max_xml_body is {}; it must be at least 1KiB",
            limits.max_xml_body
        ),
    );

    let store = &cfg.store;
    check(
        store.min_part_size <= store.max_part_size,
        format!(
            "store.min_part_size ({}) is larger than store.max_part_size ({}); lower the first or raise the second",
            store.min_part_size, store.max_part_size
        ),
    );
    check(
        store.max_part_size <= store.max_object_size,
        format!(
            "store.max_part_size ({}) is larger than store.max_object_size ({})",
            store.max_part_size, store.max_object_size
        ),
    );
    let ceiling = StoreLimits::INLINE_MAX_CEILING;
    check(
        store.inline_max <= ceiling,
        format!(
            "store.inline_max is {}; it must be at most {ceiling} (0 turns inline objects off)",
            store.inline_max
        ),
    );
    for problem in store.read_path_problems() {
        check(false, problem);
    }

    let access = env.var(ENV_ACCESS_KEY).is_some() || cfg.s3.access_key.is_some();
    let secret = env.var(ENV_SECRET_KEY).is_some() || cfg.s3.secret_key.is_some();
    check(
        access == secret,
        format!(
            "only one of the root access key and secret key is set; set both ({ENV_ACCESS_KEY} and \
             {ENV_SECRET_KEY}, or s3.access_key and s3.secret_key) or neither to have them generated"
        ),
    );
    if let Some(secret) = env
        .var(ENV_SECRET_KEY)
        .or_else(|| cfg.s3.secret_key.as_ref().map(|s| s.expose().to_owned()))
    {
        check(
            secret.len() >= 8,
            "the root secret key is shorter than 8 characters; use a longer one".to_owned(),
        );
    }
    check(
        tracing_subscriber::EnvFilter::try_new(&cfg.log.level).is_ok(),
        format!(
            "log.level {:?} is not a valid filter; use e.g. \"info\" or \"quarry_interceptor=debug,info\"",
            cfg.log.level
        ),
    );

    // The lower crates check their own sections; their messages name the keys too.
    problems.extend(cfg.functions.wasm.problems());
    problems.extend(cfg.functions.opencl.problems());
    problems.extend(cfg.functions.native.problems());
    problems.extend(cfg.functions.scheduler.problems());
    problems.extend(cfg.events.problems());
    problems.extend(super::devices::problems(&cfg.devices, &cfg.placement));

    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MapEnv, Secret};

    #[test]
    fn embedded_default_is_valid() {
        validate(&QuarryConfig::default(), &MapEnv::default()).unwrap();
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut cfg = QuarryConfig::default();
        cfg.server.admin_listen = cfg.server.listen;
        cfg.s3.limits.max_key_len = 2000;
        cfg.s3.access_key = Some("AK".into());
        let err = validate(&cfg, &MapEnv::default()).unwrap_err();
        let ConfigError::Invalid { problems } = err else {
            panic!("expected Invalid")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("server.admin_listen")));
        assert!(problems.iter().any(|p| p.contains("max_key_len")));
        assert!(problems.iter().any(|p| p.contains("secret key")));
    }

    #[test]
    fn inline_max_above_one_mib_is_refused() {
        let mut cfg = QuarryConfig::default();
        cfg.store.inline_max = bytesize::ByteSize::mib(1);
        validate(&cfg, &MapEnv::default()).unwrap();
        cfg.store.inline_max = bytesize::ByteSize::b(0);
        validate(&cfg, &MapEnv::default()).unwrap();
        cfg.store.inline_max = bytesize::ByteSize::b((1 << 20) + 1);
        let ConfigError::Invalid { problems } = validate(&cfg, &MapEnv::default()).unwrap_err()
        else {
            panic!("expected Invalid")
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("store.inline_max"), "{problems:?}");
    }

    #[test]
    fn read_path_settings_are_checked_with_the_rest() {
        let mut cfg = QuarryConfig::default();
        cfg.store.read_depth = 0;
        cfg.store.read_buffer_size = bytesize::ByteSize::b(5000);
        let ConfigError::Invalid { problems } = validate(&cfg, &MapEnv::default()).unwrap_err()
        else {
            panic!("expected Invalid")
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("store.read_depth")));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("store.read_buffer_size"))
        );
    }

    #[test]
    fn function_and_event_sections_are_checked_with_the_rest() {
        let mut cfg = QuarryConfig::default();
        cfg.functions.wasm.max_instances = 0;
        cfg.events.max_attempts = 0;
        cfg.s3.limits.max_list_keys = 0;
        let ConfigError::Invalid { problems } = validate(&cfg, &MapEnv::default()).unwrap_err()
        else {
            panic!("expected Invalid")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("functions.wasm.max_instances"))
        );
        assert!(problems.iter().any(|p| p.contains("events.max_attempts")));
    }

    #[test]
    fn offload_sections_are_checked_with_the_rest() {
        let mut cfg = QuarryConfig::default();
        cfg.functions.opencl.in_flight = 0;
        cfg.functions.native.workers = Some(0);
        cfg.functions.scheduler.calibration_size = bytesize::ByteSize::b(10);
        let ConfigError::Invalid { problems } = validate(&cfg, &MapEnv::default()).unwrap_err()
        else {
            panic!("expected Invalid")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        for key in [
            "functions.opencl.in_flight",
            "functions.native.workers",
            "functions.scheduler.calibration_size",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(key)),
                "{key}: {problems:?}"
            );
        }
    }

    #[test]
    fn keys_from_env_complete_keys_from_file() {
        let mut cfg = QuarryConfig::default();
        cfg.s3.access_key = Some("AK".into());
        validate(
            &cfg,
            &MapEnv::from_pairs([(ENV_SECRET_KEY, "longenoughsecret")]),
        )
        .unwrap();
        cfg.s3.secret_key = Some(Secret::new("short"));
        assert!(validate(&cfg, &MapEnv::default()).is_err());
    }
}
