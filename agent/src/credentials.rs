// SPDX-License-Identifier: Apache-2.0
//! Root S3 credentials and the admin token: from the environment, the config file, or
//! generated on first start and kept (mode 0600) in the data directory.
//!
//! Precedence: environment, then config, then the stored file, then a new generated value.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

use crate::config::{EnvSource, QuarryConfig, Secret};

/// Environment variable with the root access key.
pub const ENV_ACCESS_KEY: &str = "QUARRY_ROOT_ACCESS_KEY";
/// Environment variable with the root secret key.
pub const ENV_SECRET_KEY: &str = "QUARRY_ROOT_SECRET_KEY";
/// Environment variable with the admin API token.
pub const ENV_ADMIN_TOKEN: &str = "QUARRY_ADMIN_TOKEN";
/// File in the data directory holding generated root credentials.
pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials.toml";
/// File in the data directory holding a generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Where a credential came from, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An environment variable.
    Env,
    /// The config file.
    Config,
    /// A file in the data directory, written on an earlier start.
    Stored(PathBuf),
    /// Generated now and written to this file.
    Generated(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env => f.write_str("environment"),
            Self::Config => f.write_str("config file"),
            Self::Stored(p) => write!(f, "{}", p.display()),
            Self::Generated(p) => write!(f, "{} (generated now)", p.display()),
        }
    }
}

/// The root identity's S3 keys.
#[derive(Debug, Clone)]
pub struct RootCredentials {
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: Secret,
    /// Where they came from.
    pub origin: Origin,
}

/// The admin API's bearer token.
#[derive(Debug, Clone)]
pub struct AdminToken {
    /// The token.
    pub token: Secret,
    /// Where it came from.
    pub origin: Origin,
}

/// Reading or writing a credentials file failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// I/O on the credentials file failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The stored file is not what this program writes.
    #[error(
        "credentials file {path} is damaged ({message}); fix it or delete it to generate new keys"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredRoot {
    access_key: String,
    secret_key: String,
}

/// Resolves the root credentials (blocking file I/O; call at start-up).
pub fn resolve_root(
    cfg: &QuarryConfig,
    env: &dyn EnvSource,
) -> Result<RootCredentials, CredentialsError> {
    if let (Some(access_key), Some(secret)) = (env.var(ENV_ACCESS_KEY), env.var(ENV_SECRET_KEY)) {
        return Ok(RootCredentials {
            access_key,
            secret_key: Secret::new(secret),
            origin: Origin::Env,
        });
    }
    if let (Some(access_key), Some(secret_key)) = (&cfg.s3.access_key, &cfg.s3.secret_key) {
        return Ok(RootCredentials {
            access_key: access_key.clone(),
            secret_key: secret_key.clone(),
            origin: Origin::Config,
        });
    }
    let path = cfg.server.data_dir.join(ROOT_CREDENTIALS_FILE);
    if let Some(text) = read_optional(&path)? {
        let stored: StoredRoot = toml::from_str(&text).map_err(|e| CredentialsError::Damaged {
            path: path.clone(),
            message: e.to_string(),
        })?;
        return Ok(RootCredentials {
            access_key: stored.access_key,
            secret_key: Secret::new(stored.secret_key),
            origin: Origin::Stored(path),
        });
    }
    let stored = StoredRoot {
        access_key: random_string(20).to_ascii_uppercase(),
        secret_key: random_string(40),
    };
    let text = toml::to_string(&stored).map_err(|e| CredentialsError::Damaged {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_private(&path, text.as_bytes())?;
    Ok(RootCredentials {
        access_key: stored.access_key,
        secret_key: Secret::new(stored.secret_key),
        origin: Origin::Generated(path),
    })
}

/// Resolves the admin token (blocking file I/O; call at start-up).
pub fn resolve_admin_token(
    cfg: &QuarryConfig,
    env: &dyn EnvSource,
) -> Result<AdminToken, CredentialsError> {
    if let Some(token) = env.var(ENV_ADMIN_TOKEN) {
        return Ok(AdminToken {
            token: Secret::new(token),
            origin: Origin::Env,
        });
    }
    if let Some(token) = &cfg.admin.token {
        return Ok(AdminToken {
            token: token.clone(),
            origin: Origin::Config,
        });
    }
    let path = cfg.server.data_dir.join(ADMIN_TOKEN_FILE);
    if let Some(text) = read_optional(&path)? {
        let token = text.trim().to_owned();
        if token.is_empty() {
            return Err(CredentialsError::Damaged {
                path,
                message: "the file is empty".to_owned(),
            });
        }
        return Ok(AdminToken {
            token: Secret::new(token),
            origin: Origin::Stored(path),
        });
    }
    let token = random_string(48);
    write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(AdminToken {
        token: Secret::new(token),
        origin: Origin::Generated(path),
    })
}

/// Reads root credentials a local `quarryd` generated in `data_dir`, for the CLI.
pub fn stored_root(data_dir: &Path) -> Result<Option<(String, Secret)>, CredentialsError> {
    let path = data_dir.join(ROOT_CREDENTIALS_FILE);
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    let stored: StoredRoot = toml::from_str(&text).map_err(|e| CredentialsError::Damaged {
        path,
        message: e.to_string(),
    })?;
    Ok(Some((stored.access_key, Secret::new(stored.secret_key))))
}

/// Reads the admin token a local `quarryd` generated in `data_dir`, for the CLI.
pub fn stored_admin_token(data_dir: &Path) -> Result<Option<Secret>, CredentialsError> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    Ok(read_optional(&path)?.map(|t| Secret::new(t.trim())))
}

fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn read_optional(path: &Path) -> Result<Option<String>, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialsError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes a file only the owner can read, atomically (temp file, fsync, rename).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), CredentialsError> {
    let io = |op, source| CredentialsError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("create", e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("restrict permissions of", e))?;
    file.write_all(contents).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename into place", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    fn cfg_in(dir: &Path) -> QuarryConfig {
        let mut cfg = QuarryConfig::default();
        cfg.server.data_dir = dir.to_owned();
        cfg
    }

    #[test]
    fn generated_credentials_are_kept_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg_in(dir.path());
        let first = resolve_root(&cfg, &MapEnv::default()).unwrap();
        assert!(matches!(first.origin, Origin::Generated(_)));
        let second = resolve_root(&cfg, &MapEnv::default()).unwrap();
        assert!(matches!(second.origin, Origin::Stored(_)));
        assert_eq!(first.access_key, second.access_key);
        assert_eq!(first.secret_key, second.secret_key);
        let mode = std::fs::metadata(dir.path().join(ROOT_CREDENTIALS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn environment_wins_over_config_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = cfg_in(dir.path());
        cfg.s3.access_key = Some("CFGKEY".into());
        cfg.s3.secret_key = Some(Secret::new("cfgsecret"));
        let env = MapEnv::from_pairs([(ENV_ACCESS_KEY, "ENVKEY"), (ENV_SECRET_KEY, "envsecret")]);
        let creds = resolve_root(&cfg, &env).unwrap();
        assert_eq!(
            (creds.access_key.as_str(), creds.origin),
            ("ENVKEY", Origin::Env)
        );
        let creds = resolve_root(&cfg, &MapEnv::default()).unwrap();
        assert_eq!(
            (creds.access_key.as_str(), creds.origin),
            ("CFGKEY", Origin::Config)
        );
    }

    #[test]
    fn admin_token_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg_in(dir.path());
        let a = resolve_admin_token(&cfg, &MapEnv::default()).unwrap();
        let b = resolve_admin_token(&cfg, &MapEnv::default()).unwrap();
        assert_eq!(a.token, b.token);
        let env = MapEnv::from_pairs([(ENV_ADMIN_TOKEN, "tok")]);
        assert_eq!(
            resolve_admin_token(&cfg, &env).unwrap().token.expose(),
            "tok"
        );
    }
}
