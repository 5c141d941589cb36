// SPDX-License-Identifier: Apache-2.0
//! `/v1/functions`: deploy, list, show and delete functions.
//!
//! - `PUT /v1/functions/{name}?memory=64MiB&timeout=5s&param=k=v&backend_class=gpu`: the body
//!   is the package (a `.wasm` module, WAT text or a `.tar.gz` with `manifest.toml`); or, with
//!   `kernel=KERNEL` and an empty body, a kernel bound to the name with preset params; with
//!   `ebpf=PROGRAM` (beside `kernel`, or alone) the function also (or only) has that eBPF
//!   program as its variant for computational-storage devices. `201`
//!   with the [`FunctionRecord`] for a new function, `200` for a new version of an existing one.
//! - `GET /v1/functions`: every record, by name.
//! - `GET /v1/functions/{name}`: [`FunctionDetails`], the record and the triggers using it.
//! - `DELETE /v1/functions/{name}`: `200` with the deleted record; `409` naming the triggers
//!   that still use it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytesize::ByteSize;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use quarry_interceptor::functions::{DeployOptions, FunctionError, FunctionRecord};
use quarry_interceptor::triggers::TriggerRecord;
use serde::{Deserialize, Serialize};

use super::{AdminResponse, AdminState, blocking, json, json_error, read_body};

/// Largest package a deploy accepts.
pub const MAX_PACKAGE_BYTES: usize = 64 * 1024 * 1024;

/// What `GET /v1/functions/{name}` returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionDetails {
    /// The live version.
    #[serde(flatten)]
    pub record: FunctionRecord,
    /// The triggers that name it, by id.
    pub triggers: Vec<TriggerRecord>,
}

pub(super) async fn deploy(
    state: &Arc<AdminState>,
    name: &str,
    req: Request<Incoming>,
) -> AdminResponse {
    let (options, kernel) = match deploy_options(req.uri().query().unwrap_or("")) {
        Ok(options) => options,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
    };
    let body = match read_body(req, MAX_PACKAGE_BYTES, "function package").await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    if kernel.is_none()
        && let Some(program) = options.ebpf.clone()
    {
        if !body.is_empty() {
            return json_error(
                StatusCode::BAD_REQUEST,
                "an eBPF function takes no package: send an empty body with ebpf=PROGRAM",
            );
        }
        let registry = Arc::clone(&state.hooks.registry);
        let name = name.to_owned();
        return match blocking(move || registry.deploy_ebpf(&name, &program, options)).await {
            Ok(Ok(record)) if record.version == 1 => json(StatusCode::CREATED, &record),
            Ok(Ok(record)) => json(StatusCode::OK, &record),
            Ok(Err(e)) => function_error(&e),
            Err(resp) => resp,
        };
    }
    if let Some(kernel) = kernel {
        if !body.is_empty() {
            return json_error(
                StatusCode::BAD_REQUEST,
                "a kernel function takes no package: send an empty body with kernel=NAME",
            );
        }
        let registry = Arc::clone(&state.hooks.registry);
        let name = name.to_owned();
        return match blocking(move || registry.deploy_kernel(&name, &kernel, options)).await {
            Ok(Ok(record)) if record.version == 1 => json(StatusCode::CREATED, &record),
            Ok(Ok(record)) => json(StatusCode::OK, &record),
            Ok(Err(e)) => function_error(&e),
            Err(resp) => resp,
        };
    }
    if body.is_empty() {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the request body is empty; send the module (.wasm or WAT text) or a .tar.gz package",
        );
    }
    let registry = Arc::clone(&state.hooks.registry);
    let name = name.to_owned();
    // Compiling takes a while and must not hold a runtime thread.
    match blocking(move || registry.deploy(&name, &body, options)).await {
        Ok(Ok(record)) if record.version == 1 => json(StatusCode::CREATED, &record),
        Ok(Ok(record)) => json(StatusCode::OK, &record),
        Ok(Err(e)) => function_error(&e),
        Err(resp) => resp,
    }
}

pub(super) fn list(state: &AdminState) -> AdminResponse {
    json(StatusCode::OK, &state.hooks.registry.list())
}

pub(super) fn show(state: &AdminState, name: &str) -> AdminResponse {
    let Some(deployed) = state.hooks.registry.get(name) else {
        return function_error(&FunctionError::NoSuchFunction {
            name: name.to_owned(),
        });
    };
    let triggers = state
        .hooks
        .triggers
        .list()
        .into_iter()
        .filter(|t| t.functions.iter().any(|f| f == name))
        .collect();
    json(
        StatusCode::OK,
        &FunctionDetails {
            record: deployed.record.clone(),
            triggers,
        },
    )
}

pub(super) async fn remove(state: &Arc<AdminState>, name: &str) -> AdminResponse {
    let _edit = state.catalog_edit.lock().await;
    let users = state.hooks.triggers.users_of(name);
    let registry = Arc::clone(&state.hooks.registry);
    let name = name.to_owned();
    match blocking(move || registry.remove(&name, users)).await {
        Ok(Ok(record)) => json(StatusCode::OK, &record),
        Ok(Err(e)) => function_error(&e),
        Err(resp) => resp,
    }
}

/// The one mapping from registry errors to statuses.
fn function_error(e: &FunctionError) -> AdminResponse {
    let status = match e {
        FunctionError::BadName { .. }
        | FunctionError::BadPackage { .. }
        | FunctionError::NameMismatch { .. }
        | FunctionError::Compile { .. }
        | FunctionError::LimitTooLarge { .. }
        | FunctionError::KernelName { .. }
        | FunctionError::BadPolicy { .. }
        | FunctionError::KernelParams { .. } => StatusCode::BAD_REQUEST,
        FunctionError::NoSuchFunction { .. }
        | FunctionError::NoSuchKernel { .. }
        | FunctionError::NoSuchEbpf { .. } => StatusCode::NOT_FOUND,
        FunctionError::InUse { triggers, .. } => {
            return json(
                StatusCode::CONFLICT,
                &serde_json::json!({ "error": e.to_string(), "triggers": triggers }),
            );
        }
        FunctionError::Catalog(_) | FunctionError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_error(status, &e.to_string())
}

/// Parses `memory=SIZE`, `timeout=DURATION`, repeated `param=K=V`, `backend_class=POLICY` and
/// `kernel=NAME` (returned beside the options); anything else is refused by name.
fn deploy_options(query: &str) -> Result<(DeployOptions, Option<String>), String> {
    let mut kernel = None;
    let mut options = DeployOptions {
        params: BTreeMap::new(),
        ..DeployOptions::default()
    };
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "memory" => {
                let memory: ByteSize = value.parse().map_err(|e| {
                    format!("memory={value:?} is not a size (write e.g. 64MiB): {e}")
                })?;
                options.memory = Some(memory);
            }
            "timeout" => {
                let timeout: Duration = humantime::parse_duration(&value).map_err(|e| {
                    format!("timeout={value:?} is not a duration (write e.g. 5s): {e}")
                })?;
                if timeout.is_zero() {
                    return Err("timeout must be longer than 0s".to_owned());
                }
                options.timeout = Some(timeout);
            }
            "param" => {
                let (k, v) = value
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("param={value:?} is not of the form NAME=VALUE"))?;
                options.params.insert(k.to_owned(), v.to_owned());
            }
            "kernel" => kernel = Some(value.into_owned()),
            "ebpf" => options.ebpf = Some(value.into_owned()),
            "backend_class" => options.backend_class = Some(value.into_owned()),
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}; use memory, timeout, param, kernel, ebpf or backend_class"
                ));
            }
        }
    }
    Ok((options, kernel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_options_parse_units_and_repeated_params() {
        let (o, kernel) =
            deploy_options("memory=64MiB&timeout=5s&param=a%3D1&param=b=x%3Dy").unwrap();
        assert_eq!(kernel, None);
        assert_eq!(o.memory, Some(ByteSize::mib(64)));
        assert_eq!(o.timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.params["a"], "1");
        assert_eq!(o.params["b"], "x=y");
        assert!(deploy_options("").unwrap().0.memory.is_none());
        let (o, kernel) = deploy_options("kernel=grep&backend_class=prefer%3Agpu").unwrap();
        assert_eq!(kernel.as_deref(), Some("grep"));
        assert_eq!(o.backend_class.as_deref(), Some("prefer:gpu"));
    }

    #[test]
    fn deploy_options_name_what_is_wrong() {
        assert!(
            deploy_options("memory=lots")
                .unwrap_err()
                .contains("memory")
        );
        assert!(
            deploy_options("timeout=0s")
                .unwrap_err()
                .contains("timeout")
        );
        assert!(
            deploy_options("param=novalue")
                .unwrap_err()
                .contains("NAME=VALUE")
        );
        assert!(deploy_options("mem=1").unwrap_err().contains("\"mem\""));
    }
}
