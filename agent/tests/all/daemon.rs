// SPDX-License-Identifier: Apache-2.0
//! `quarryd` as a process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rusty_s3::actions::{CreateBucket, GetObject, PutObject};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

const QUARRYD: &str = env!("CARGO_BIN_EXE_quarryd");

fn quarryd(args: &[&str]) -> Command {
    let mut cmd = Command::new(QUARRYD);
    cmd.args(args)
        .env_remove("QUARRY_ROOT_ACCESS_KEY")
        .env_remove("QUARRY_ROOT_SECRET_KEY")
        .env_remove("QUARRY_ADMIN_TOKEN")
        .env_remove("QUARRY_CONFIG")
        .env("RUST_LOG", "info");
    cmd
}

/// `quarryd` with `extra` flags, a data directory, and both listeners on kernel-chosen ports.
fn on_ephemeral_ports(extra: &[&str], data_dir: &str) -> Command {
    let mut args = extra.to_vec();
    args.extend([
        "--data-dir",
        data_dir,
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    quarryd(&args)
}

/// A running daemon on ephemeral ports, with its stderr lines arriving on a channel.
pub(crate) struct Daemon {
    child: Child,
    /// The S3 endpoint URL.
    pub(crate) s3: String,
    /// The admin API URL.
    pub(crate) admin: String,
    /// Log lines up to and including "quarryd ready".
    pub(crate) startup: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed test must not leave a daemon behind holding the harness's pipes.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills a child process when a test ends early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    pub(crate) fn start(data_dir: &Path) -> Self {
        let mut child = on_ephemeral_ports(&[], data_dir.to_str().unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .expect("quarryd starts");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut startup = Vec::new();
        while !startup
            .last()
            .is_some_and(|l: &String| l.contains("quarryd ready"))
        {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no ready line; the log so far: {startup:#?}"));
            startup.push(line);
        }
        let ready = startup.last().unwrap();
        let s3 = field(ready, "s3=").expect("ready line names the S3 endpoint");
        let admin = field(ready, "admin=").expect("ready line names the admin endpoint");
        Self {
            child,
            s3,
            admin,
            startup,
            lines,
        }
    }

    pub(crate) fn sigterm(&self) {
        kill(
            Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            Signal::SIGTERM,
        )
        .unwrap();
    }

    pub(crate) fn wait(&mut self) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        self.child.kill().unwrap();
        panic!("quarryd did not exit within 10 s of SIGTERM");
    }
}

fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(name)? + name.len();
    Some(line[start..].split_whitespace().next()?.to_owned())
}

fn stored_keys(data_dir: &Path) -> Credentials {
    let text = std::fs::read_to_string(data_dir.join("root-credentials.toml")).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    Credentials::new(
        table["access_key"].as_str().unwrap(),
        table["secret_key"].as_str().unwrap(),
    )
}

fn host_port(url: &url::Url) -> String {
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
}

#[test]
fn check_config_refuses_an_unknown_key_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("quarry.toml");
    std::fs::write(&cfg, "[server]\nlisten_port = 9000\n").unwrap();
    let out = quarryd(&["--config", cfg.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen_port"), "{stderr}");
}

#[test]
fn check_config_reports_every_problem_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("quarry.toml");
    std::fs::write(
        &cfg,
        "[s3]\naccess_key = \"AK\"\nsecret_key = \"topsecretvalue\"\n",
    )
    .unwrap();
    let out = quarryd(&["--config", cfg.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("<redacted>") && !stdout.contains("topsecretvalue"),
        "{stdout}"
    );
    assert!(
        stdout.contains("max_object_size")
            && stdout.contains("[functions.wasm]")
            && stdout.contains("max_attempts"),
        "effective config includes defaults: {stdout}"
    );

    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\"\n[s3.limits]\nmax_key_len = 5000\n").unwrap();
    let out = quarryd(&["--config", cfg.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("admin_listen") && stderr.contains("max_key_len"),
        "{stderr}"
    );
}

#[test]
fn first_start_generates_private_credentials_and_a_restart_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut daemon = Daemon::start(&data);
    let creds = data.join("root-credentials.toml");
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = std::fs::read(&creds).unwrap();
    daemon.sigterm();
    assert!(daemon.wait().success());

    let mut daemon = Daemon::start(&data);
    assert_eq!(std::fs::read(&creds).unwrap(), first);
    daemon.sigterm();
    assert!(daemon.wait().success());
}

#[test]
fn sigterm_lets_an_in_flight_upload_finish_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut daemon = Daemon::start(&data);
    let creds = stored_keys(&data);
    let endpoint: url::Url = daemon.s3.parse().unwrap();
    let bucket = Bucket::new(endpoint, UrlStyle::Path, "drain", "us-east-1").unwrap();
    let http = |method: &str, url: &url::Url, body: &[u8]| -> String {
        let mut s = TcpStream::connect(host_port(url)).unwrap();
        let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", host_port(url), body.len()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp
    };
    let resp = http(
        "PUT",
        &CreateBucket::new(&bucket, &creds).sign(Duration::from_secs(60)),
        b"",
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    // Start an upload, send half the body, then SIGTERM the daemon.
    let body = vec![7u8; 256 * 1024];
    let put = PutObject::new(&bucket, Some(&creds), "late").sign(Duration::from_secs(60));
    let mut s = TcpStream::connect(host_port(&put)).unwrap();
    let path = format!("{}?{}", put.path(), put.query().unwrap());
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        host_port(&put),
        body.len()
    )
    .unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    std::thread::park_timeout(Duration::from_millis(300));
    daemon.sigterm();
    let mut drain = wait_for(&daemon.lines, "draining");
    while !drain.contains("s3") {
        drain = wait_for(&daemon.lines, "draining");
    }

    // New connections are refused while the old request may still finish.
    assert!(
        TcpStream::connect(host_port(&put)).is_err(),
        "listener closed on SIGTERM"
    );
    s.write_all(&body[body.len() / 2..]).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the in-flight upload completes");
    drop(s);
    let status = daemon.wait();
    assert!(status.success(), "clean exit after the drain: {status:?}");

    // The acknowledged upload is durable across the restart.
    let mut daemon = Daemon::start(&data);
    let endpoint: url::Url = daemon.s3.parse().unwrap();
    let bucket = Bucket::new(endpoint, UrlStyle::Path, "drain", "us-east-1").unwrap();
    let get = GetObject::new(&bucket, Some(&creds), "late").sign(Duration::from_secs(60));
    let resp = http("GET", &get, b"");
    assert!(
        resp.starts_with("HTTP/1.1 200")
            && resp.contains(&format!("content-length: {}", body.len())),
        "{resp:.300}"
    );
    daemon.sigterm();
    assert!(daemon.wait().success());
}

#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;

    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let child = on_ephemeral_ports(&[], dir.path().join("data").to_str().unwrap())
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !received.iter().any(|m: &String| m.contains("WATCHDOG=1")) {
        let n = socket.recv(&mut buf).expect("a notification within 20 s");
        received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(received[0].contains("READY=1"), "{received:?}");
    kill(
        Pid::from_raw(i32::try_from(child.0.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    loop {
        let n = socket.recv(&mut buf).expect("STOPPING=1 within 20 s");
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            break;
        }
    }
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn json_logs_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("quarry.toml");
    std::fs::write(&cfg, "[log]\nformat = \"json\"\n").unwrap();
    let mut child = on_ephemeral_ports(
        &["--config", cfg.to_str().unwrap()],
        dir.path().join("data").to_str().unwrap(),
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let ready = lines
        .find(|l| l.contains("quarryd ready"))
        .expect("a ready line");
    // Keep reading, so the daemon's later log lines never meet a closed pipe.
    let drain = std::thread::spawn(move || lines.count());
    let event: serde_json::Value = serde_json::from_str(&ready).expect("the line is JSON");
    assert_eq!(event["message"], "quarryd ready", "{ready}");
    assert!(
        event["s3"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    kill(
        Pid::from_raw(i32::try_from(child.0.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.0.wait().unwrap().success());
    assert!(drain.join().unwrap() > 0, "shutdown is logged too");
}
