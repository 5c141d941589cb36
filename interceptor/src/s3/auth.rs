// SPDX-License-Identifier: Apache-2.0
//! Authentication: the secret key of an access key, for s3s's signature checks.

use async_trait::async_trait;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

/// The node's root identity: one access key and its secret.
pub struct RootAuth {
    access_key: String,
    secret_key: SecretKey,
}

impl std::fmt::Debug for RootAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootAuth")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl RootAuth {
    /// The root identity with these keys.
    pub fn new(access_key: String, secret_key: String) -> Self {
        Self {
            access_key,
            secret_key: SecretKey::from(secret_key),
        }
    }
}

#[async_trait]
impl S3Auth for RootAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            Ok(self.secret_key.clone())
        } else {
            Err(s3_error!(
                InvalidAccessKeyId,
                "the access key id you provided does not exist on this node"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_access_key_is_invalid_access_key_id() {
        let auth = RootAuth::new("AK".into(), "secretsecret".into());
        assert_eq!(
            auth.get_secret_key("AK").await.unwrap().expose(),
            "secretsecret"
        );
        let err = auth.get_secret_key("OTHER").await.unwrap_err();
        assert_eq!(*err.code(), s3s::S3ErrorCode::InvalidAccessKeyId);
    }
}
