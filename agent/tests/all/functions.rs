// SPDX-License-Identifier: Apache-2.0
//! Functions and triggers managed over the admin API and the `quarry` CLI, persisted across a
//! restart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::daemon::Daemon;

const QUARRY: &str = env!("CARGO_BIN_EXE_quarry");

/// An identity filter: copies stdin to stdout (ABI v1, WASI preview1); the shipped example.
const IDENTITY_WAT: &str = include_str!("../../../examples/functions/wat/identity.wat");

/// A module that imports what no node offers; the shipped hostile example.
const HOSTILE_WAT: &str = include_str!("../../../examples/functions/hostile/badimport.wat");

/// The admin API of a test daemon.
struct Admin {
    /// `host:port`.
    addr: String,
    token: String,
}

impl Admin {
    fn of(daemon: &Daemon, data_dir: &Path) -> Self {
        let token = std::fs::read_to_string(data_dir.join("admin-token")).unwrap();
        Self {
            addr: daemon.admin.trim_start_matches("http://").to_owned(),
            token: token.trim().to_owned(),
        }
    }

    /// Sends a request with `extra` header lines; returns the status and the JSON body.
    fn request(&self, method: &str, target: &str, extra: &str, body: &[u8]) -> (u16, Value) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{extra}\
             Connection: close\r\n",
            self.addr, self.token
        )
        .unwrap();
        if !extra.contains("Content-Length") {
            write!(s, "Content-Length: {}\r\n", body.len()).unwrap();
        }
        s.write_all(b"\r\n").unwrap();
        s.write_all(body).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp[9..12].parse().unwrap();
        let (_, json) = resp.split_once("\r\n\r\n").unwrap();
        (status, serde_json::from_str(json).unwrap_or(Value::Null))
    }

    fn call(&self, method: &str, target: &str, body: &[u8]) -> (u16, Value) {
        self.request(method, target, "", body)
    }
}

/// Runs the `quarry` CLI against `daemon`, finding the token in `data_dir` as on a node.
fn quarry(daemon: &Daemon, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(QUARRY)
        .args(args)
        .env_remove("QUARRY_ADMIN_TOKEN")
        .env("QUARRY_ADMIN_URL", &daemon.admin)
        .env("QUARRY_ENDPOINT", &daemon.s3)
        .env("QUARRY_DATA_DIR", data_dir)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "quarry failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn functions_and_triggers_are_managed_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut daemon = Daemon::start(&data);
    let admin = Admin::of(&daemon, &data);

    let (status, record) = admin.call(
        "PUT",
        "/v1/functions/ident?memory=1MiB&timeout=5s&param=greeting%3Dhi",
        IDENTITY_WAT.as_bytes(),
    );
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["name"], "ident");
    assert_eq!(record["version"], 1);
    assert_eq!(record["limits"]["timeout"], "5s");
    assert_eq!(record["params"]["greeting"], "hi");
    let (status, record) = admin.call("PUT", "/v1/functions/ident", IDENTITY_WAT.as_bytes());
    assert_eq!(status, 200, "an update: {record}");
    assert_eq!(record["version"], 2);

    let (status, list) = admin.call("GET", "/v1/functions", b"");
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let ls = stdout(&quarry(&daemon, &data, &["fn", "ls"]));
    assert!(
        ls.lines()
            .any(|l| l.starts_with("ident") && l.contains("v2")),
        "{ls}"
    );

    let id = stdout(&quarry(
        &daemon,
        &data,
        &[
            "trigger",
            "add",
            "--bucket",
            "photos",
            "--event",
            "after-get",
            "--function",
            "ident",
            "--suffix",
            ".txt",
            "--param",
            "w=2",
        ],
    ));
    let id: u64 = id.trim().parse().expect("trigger add prints the id");
    let ls = stdout(&quarry(&daemon, &data, &["trigger", "ls"]));
    assert!(
        ls.lines()
            .any(|l| l.starts_with(&id.to_string()) && l.contains("after-get")),
        "{ls}"
    );

    // In use: the API names the trigger, the CLI prints the message and exits 1.
    let (status, err) = admin.call("DELETE", "/v1/functions/ident", b"");
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["triggers"], serde_json::json!([id]));
    assert!(
        err["error"].as_str().unwrap().contains(&id.to_string()),
        "{err}"
    );
    let out = quarry(&daemon, &data, &["fn", "rm", "ident"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("409"),
        "{stderr}"
    );

    // A restart loads the compiled artifact instead of compiling again.
    daemon.sigterm();
    assert!(daemon.wait().success());
    let daemon = Daemon::start(&data);
    let loaded = daemon
        .startup
        .iter()
        .find(|l| l.contains("loaded deployed functions"))
        .unwrap_or_else(|| panic!("no load line in {:#?}", daemon.startup));
    assert!(
        loaded.contains("cached=1") && loaded.contains("compiled=0"),
        "{loaded}"
    );
    let admin = Admin::of(&daemon, &data);
    let (status, details) = admin.call("GET", "/v1/functions/ident", b"");
    assert_eq!(status, 200, "{details}");
    assert_eq!(details["version"], 2);
    assert_eq!(details["triggers"][0]["id"], id);

    let (status, _) = admin.call("DELETE", &format!("/v1/triggers/{id}"), b"");
    assert_eq!(status, 200);
    let (status, triggers) = admin.call("GET", "/v1/triggers", b"");
    assert_eq!((status, triggers), (200, serde_json::json!([])));
    let out = stdout(&quarry(&daemon, &data, &["fn", "rm", "ident"]));
    assert!(out.contains("deleted function ident"), "{out}");
    let (status, _) = admin.call("GET", "/v1/functions/ident", b"");
    assert_eq!(status, 404);
}

#[test]
fn bad_deploys_and_unknown_ids_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let daemon = Daemon::start(&data);
    let admin = Admin::of(&daemon, &data);

    let (status, err) = admin.call("PUT", "/v1/functions/boom", HOSTILE_WAT.as_bytes());
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("env::launch_missiles"),
        "{err}"
    );
    let (status, err) = admin.call("PUT", "/v1/functions/Bad%20Name", IDENTITY_WAT.as_bytes());
    assert_eq!(status, 400, "{err}");
    let (status, err) = admin.call(
        "PUT",
        "/v1/functions/f?memory=lots",
        IDENTITY_WAT.as_bytes(),
    );
    assert_eq!(status, 400, "{err}");
    let (status, err) = admin.request(
        "PUT",
        "/v1/functions/big",
        "Content-Length: 100000000\r\n",
        b"",
    );
    assert_eq!(status, 413, "{err}");

    let spec = br#"{"bucket": "b", "event": "after-get", "functions": ["missing"]}"#;
    let (status, err) = admin.call("POST", "/v1/triggers", spec);
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("missing"), "{err}");
    let (status, err) = admin.call("POST", "/v1/triggers", br#"{"bucket": "b", "colour": 1}"#);
    assert_eq!(status, 400, "{err}");
    let (status, _) = admin.call("DELETE", "/v1/triggers/42", b"");
    assert_eq!(status, 404);
    let (status, _) = admin.call("DELETE", "/v1/functions/nothing", b"");
    assert_eq!(status, 404);

    let (status, events) = admin.call("GET", "/v1/events", b"");
    assert_eq!(status, 200);
    assert_eq!(events, serde_json::json!({"pending": [], "dead": []}));
    let (status, _) = admin.call("POST", "/v1/events/7/retry", b"");
    assert_eq!(status, 404);
}

#[test]
fn the_cli_names_the_admin_url_it_cannot_reach() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(QUARRY)
        .args(["fn", "ls"])
        .env("QUARRY_ADMIN_URL", "http://127.0.0.1:1")
        .env("QUARRY_ADMIN_TOKEN", "t")
        .env("QUARRY_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("http://127.0.0.1:1")
            && stderr.contains("QUARRY_ADMIN_URL"),
        "{stderr}"
    );
}
