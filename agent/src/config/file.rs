// SPDX-License-Identifier: Apache-2.0
//! Reading `quarry.toml`.

use std::path::Path;

use super::{ConfigError, QuarryConfig};

/// Reads and parses a config file (no validation; see [`super::validate`]).
pub fn load(path: &Path) -> Result<QuarryConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&text, path)
}

/// Parses config text; `path` only labels errors. Unknown keys are refused with their name.
pub fn parse_str(text: &str, path: &Path) -> Result<QuarryConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        assert_eq!(
            parse_str("", Path::new("q.toml")).unwrap(),
            QuarryConfig::default()
        );
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let err = parse_str("[server]\nlisten_port = 9000\n", Path::new("q.toml")).unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }

    #[test]
    fn printed_effective_config_parses_back() {
        let cfg = QuarryConfig::default();
        let text = toml::to_string_pretty(&cfg).unwrap();
        assert!(
            text.contains("[functions.wasm]") && text.contains("[events]"),
            "{text}"
        );
        assert_eq!(parse_str(&text, Path::new("q.toml")).unwrap(), cfg);
    }

    #[test]
    fn typed_values_parse() {
        let text = r#"
            [server]
            listen = "0.0.0.0:9100"
            shutdown_grace = "5s"
            max_header_bytes = "32KiB"
            [store]
            max_object_size = "1GiB"
            inline_max = "4KiB"
            [s3.limits]
            max_key_len = 512
            [log]
            format = "json"
            [functions.wasm]
            max_instances = 16
            max_memory = "128MiB"
            queue_timeout = "500ms"
            [events]
            max_attempts = 3
            backoff_max = "1m"
        "#;
        let cfg = parse_str(text, Path::new("q.toml")).unwrap();
        assert_eq!(cfg.server.listen.port(), 9100);
        assert_eq!(cfg.server.shutdown_grace.as_secs(), 5);
        assert_eq!(cfg.server.max_header_bytes.as_u64(), 32 * 1024);
        assert_eq!(cfg.store.max_object_size.as_u64(), 1 << 30);
        assert_eq!(cfg.store.inline_max.as_u64(), 4 << 10);
        assert_eq!(cfg.s3.limits.max_key_len, 512);
        assert_eq!(cfg.log.format, super::super::LogFormat::Json);
        assert_eq!(cfg.functions.wasm.max_instances, 16);
        assert_eq!(cfg.functions.wasm.max_memory.as_u64(), 128 << 20);
        assert_eq!(cfg.functions.wasm.queue_timeout.as_millis(), 500);
        assert_eq!(cfg.events.max_attempts, 3);
        assert_eq!(cfg.events.backoff_max.as_secs(), 60);
    }
}
