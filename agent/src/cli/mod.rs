// SPDX-License-Identifier: Apache-2.0
//! The `quarry` command: node status, functions, triggers and events over the admin API, and
//! object basics over S3 like any client (`ls`, `put` and `get` with progress bars, `rm`, `mb`,
//! `rb`, and `invoke`, a GET through functions).
//!
//! Endpoints and keys come from flags, then environment variables, then the files a local
//! `quarryd` generated in its data directory, so on the node itself no setup is needed.

mod admin;
mod devices;
mod ebpf;
mod events;
mod functions;
mod invoke;
mod kernels;
mod s3;
mod status;
mod table;
mod target;
mod transfer;
mod triggers;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use quarry_interceptor::triggers::Event;

use self::admin::AdminClient;
use self::s3::S3Client;
use self::target::ObjectPath;

/// A failed CLI command: the message names what went wrong and, where it can, the fix.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A usage problem the user can fix.
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error.
    #[error("{code}: {message}")]
    Server {
        /// S3 error code or HTTP status.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The admin API answered with an error.
    #[error("{message} ({status})")]
    Admin {
        /// The HTTP status.
        status: String,
        /// The server's message.
        message: String,
    },
    /// The admin API could not be reached.
    #[error(
        "cannot reach the admin API at {url}; is quarryd running there? Set QUARRY_ADMIN_URL (or --admin-url) to the node's admin address (server.admin_listen)"
    )]
    AdminUnreachable {
        /// The admin URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The request could not be sent or the response read.
    #[error("request to {url} failed; is quarryd running there?")]
    Http {
        /// The endpoint.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// Local file I/O failed.
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
}

/// `quarry`: operate a Quarry node.
#[derive(Debug, Parser)]
#[command(name = "quarry", version, about = "Operate a Quarry storage node")]
pub struct Cli {
    /// S3 endpoint of the node.
    #[arg(
        long,
        env = "QUARRY_ENDPOINT",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    pub endpoint: String,
    /// Admin API of the node.
    #[arg(
        long,
        env = "QUARRY_ADMIN_URL",
        default_value = "http://127.0.0.1:9001",
        global = true
    )]
    pub admin_url: String,
    /// Admin bearer token (default: DATA_DIR/admin-token).
    #[arg(
        long,
        env = "QUARRY_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
    /// S3 access key (default: QUARRY_ROOT_ACCESS_KEY, then DATA_DIR/root-credentials.toml).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", global = true)]
    pub access_key: Option<String>,
    /// S3 secret key (default: QUARRY_ROOT_SECRET_KEY, then DATA_DIR/root-credentials.toml).
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secret_key: Option<String>,
    /// Data directory of a local quarryd, used to find generated keys and token.
    #[arg(
        long,
        env = "QUARRY_DATA_DIR",
        default_value = "./quarry-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show endpoints, version, uptime and store usage.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// List buckets, or objects in BUCKET[/PREFIX].
    Ls {
        /// BUCKET or BUCKET/PREFIX; omit to list buckets.
        path: Option<String>,
        /// List every key under the prefix instead of grouping by "/".
        #[arg(short, long)]
        recursive: bool,
    },
    /// Upload FILE to BUCKET/KEY (KEY defaults to the file name).
    Put {
        /// Local file.
        file: PathBuf,
        /// BUCKET/KEY or BUCKET/.
        dest: String,
    },
    /// Download BUCKET/KEY to FILE (default: the key's last component; "-" for stdout).
    Get {
        /// BUCKET/KEY.
        source: String,
        /// Local file.
        file: Option<PathBuf>,
    },
    /// Delete BUCKET/KEY.
    Rm {
        /// BUCKET/KEY.
        path: String,
    },
    /// Create a bucket.
    Mb {
        /// Bucket name.
        bucket: String,
    },
    /// Delete an empty bucket.
    Rb {
        /// Bucket name.
        bucket: String,
    },
    /// Deploy, list, show and delete functions.
    #[command(name = "fn")]
    Function {
        /// What to do.
        #[command(subcommand)]
        command: FunctionCommand,
    },
    /// Bind functions to object operations in a bucket.
    Trigger {
        /// What to do.
        #[command(subcommand)]
        command: TriggerCommand,
    },
    /// GET BUCKET/KEY through functions and write the output to stdout.
    Invoke {
        /// BUCKET/KEY.
        path: String,
        /// The function, or a pipeline in order.
        #[arg(
            long,
            value_name = "NAME[,NAME2...]",
            value_delimiter = ',',
            required = true
        )]
        function: Vec<String>,
        /// A parameter for the functions (repeatable).
        #[arg(long = "param", value_name = "K=V", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// The asynchronous event queue and its dead letters.
    Events {
        /// What to do.
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// The kernels functions can run: built-in, and registered OpenCL kernels.
    Kernel {
        /// What to do.
        #[command(subcommand)]
        command: KernelCommand,
    },
    /// List the backends jobs are placed on, with their load and calibrated rates.
    Devices {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// eBPF device programs for computational-storage devices: built-in, and registered.
    Ebpf {
        /// What to do.
        #[command(subcommand)]
        command: EbpfCommand,
    },
}

/// `quarry ebpf ...`.
#[derive(Debug, Subcommand)]
pub enum EbpfCommand {
    /// List the eBPF programs.
    Ls,
    /// Register FILE (an eBPF ELF object: `clang -target bpf -O2 -c prog.c`) as program NAME.
    /// The loader's checks (an ELF, BPF, a quarry/chunk section, known helpers, size) run on
    /// the node; a refusal prints why. See docs/ebpf.md for the helper ABI.
    Register {
        /// Program name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// The ELF object.
        file: PathBuf,
        /// filter, map or reduce.
        #[arg(long)]
        shape: String,
        /// How the input is cut into records: bytes, lines, csv or records:N.
        #[arg(long, default_value = "lines")]
        framing: String,
        /// One line saying what it computes.
        #[arg(long, default_value = "")]
        summary: String,
        /// A parameter the program reads with quarry_param: NAME (required) or NAME=DEFAULT
        /// (repeatable).
        #[arg(long = "param", value_name = "NAME[=DEFAULT]")]
        params: Vec<String>,
    },
    /// Show one program: its listing and, for a registered one, its registration.
    Show {
        /// The program.
        name: String,
    },
    /// Remove a registered program (refused while functions use it).
    Rm {
        /// The program.
        name: String,
    },
}

/// `quarry kernel ...`.
#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// List the kernels.
    Ls {
        /// Also list each kernel's parameters.
        #[arg(long)]
        params: bool,
    },
    /// Register FILE (OpenCL C source, or a prebuilt binary with --binary-for) as kernel NAME,
    /// built on every OpenCL device of the node; a build error prints the compiler's log.
    /// See docs/opencl.md for the kernel ABI.
    Register {
        /// Kernel name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// The OpenCL C source (or binary).
        file: PathBuf,
        /// filter, map (entries quarry_count and quarry_emit) or reduce (quarry_reduce).
        #[arg(long)]
        shape: String,
        /// How the input is cut into records: bytes, lines, csv or records:N.
        #[arg(long, default_value = "lines")]
        framing: String,
        /// One line saying what it computes.
        #[arg(long, default_value = "")]
        summary: String,
        /// FILE is a prebuilt binary for this device (as `quarry devices` names it).
        #[arg(long)]
        binary_for: Option<String>,
    },
    /// Show one kernel: its listing and, for a registered one, its registration.
    Show {
        /// The kernel.
        name: String,
    },
    /// Remove a registered kernel (refused while functions or triggers use it).
    Rm {
        /// The kernel.
        name: String,
    },
}

/// `quarry fn ...`.
#[derive(Debug, Subcommand)]
pub enum FunctionCommand {
    /// Deploy FILE (.wasm, WAT text or .tar.gz package), or a kernel with preset params
    /// (--kernel), as NAME, or as NAME's next version.
    Deploy {
        /// Function name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// The module or package.
        #[arg(required_unless_present_any = ["kernel", "ebpf"], conflicts_with = "kernel")]
        file: Option<PathBuf>,
        /// Bind this kernel (built-in or registered; `quarry kernel ls`) instead of a module.
        #[arg(long)]
        kernel: Option<String>,
        /// Give the function this eBPF program (`quarry ebpf ls`) as its variant for
        /// computational-storage devices: beside --kernel, or alone.
        #[arg(long, conflicts_with = "file")]
        ebpf: Option<String>,
        /// Where it runs: auto, a device class (cpu, gpu, fpga, csd), require:CLASS,
        /// prefer:CLASS or backend:ID (`quarry devices` lists the ids).
        #[arg(long)]
        backend_class: Option<String>,
        /// Memory limit (e.g. 64MiB; default: the manifest's, else 64MiB).
        #[arg(long)]
        memory: Option<String>,
        /// Time limit for one run (e.g. 5s; default: the manifest's, else 60s).
        #[arg(long)]
        timeout: Option<String>,
        /// A default parameter (repeatable).
        #[arg(long = "param", value_name = "K=V", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// List deployed functions.
    Ls,
    /// Show a function's limits, parameters and the triggers using it.
    Show {
        /// Function name.
        name: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a function (refused while a trigger uses it).
    Rm {
        /// Function name.
        name: String,
    },
}

/// `quarry trigger ...`.
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// Add a trigger and print its id.
    Add {
        /// The bucket it watches.
        #[arg(long)]
        bucket: String,
        /// after-get, before-get, put, put-done, delete or copy.
        #[arg(long, value_parser = parse_event)]
        event: Event,
        /// The function, or a pipeline in order.
        #[arg(
            long = "function",
            value_name = "NAME[,NAME2...]",
            value_delimiter = ',',
            required = true
        )]
        functions: Vec<String>,
        /// Keys must start with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Keys must end with this.
        #[arg(long, default_value = "")]
        suffix: String,
        /// A parameter given to the functions (repeatable).
        #[arg(long = "param", value_name = "K=V", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Range requests on objects an after-get trigger transforms.
        #[arg(long, value_enum, default_value_t = RangeArg::Refuse)]
        range: RangeArg,
        /// Where its functions run: auto, a device class (cpu, gpu, fpga, csd),
        /// require:CLASS, prefer:CLASS or backend:ID (`quarry devices` lists the ids).
        #[arg(long)]
        backend_class: Option<String>,
    },
    /// List triggers.
    Ls,
    /// Remove a trigger.
    Rm {
        /// Trigger id.
        id: u64,
    },
}

/// What a Range request on a transformed object gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RangeArg {
    /// 400 InvalidRequest.
    Refuse,
    /// The range is served over the transformed bytes.
    Transformed,
}

/// `quarry events ...`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List pending events and dead letters.
    Ls,
    /// Put a dead-lettered event back in the queue.
    Retry {
        /// Event id.
        id: u64,
    },
}

/// Parses `K=V`.
fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not of the form NAME=VALUE")),
    }
}

/// Parses an event name.
fn parse_event(s: &str) -> Result<Event, String> {
    s.parse::<Event>().map_err(|e| e.to_string())
}

/// Runs the parsed command, writing results to stdout.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Status { json } => status::run(&cli, *json).await,
        Command::Ls { path: None, .. } => status::list_buckets(&cli).await,
        Command::Ls {
            path: Some(path),
            recursive,
        } => {
            let client = S3Client::from_cli(&cli)?;
            let (bucket, prefix) = target::split_bucket(path)?;
            client.list(&bucket, &prefix, *recursive).await
        }
        Command::Put { file, dest } => {
            let client = S3Client::from_cli(&cli)?;
            let dest = ObjectPath::parse_dest(dest, file)?;
            transfer::put(&client, file, &dest).await
        }
        Command::Get { source, file } => {
            let client = S3Client::from_cli(&cli)?;
            let source = ObjectPath::parse(source)?;
            transfer::get(&client, &source, file.as_deref()).await
        }
        Command::Rm { path } => {
            S3Client::from_cli(&cli)?
                .delete_object(&ObjectPath::parse(path)?)
                .await
        }
        Command::Mb { bucket } => S3Client::from_cli(&cli)?.create_bucket(bucket).await,
        Command::Rb { bucket } => S3Client::from_cli(&cli)?.delete_bucket(bucket).await,
        Command::Function { command } => {
            functions::run(&AdminClient::from_cli(&cli)?, command).await
        }
        Command::Trigger { command } => triggers::run(&AdminClient::from_cli(&cli)?, command).await,
        Command::Invoke {
            path,
            function,
            params,
        } => {
            let client = S3Client::from_cli(&cli)?;
            invoke::invoke(&client, &ObjectPath::parse(path)?, function, params).await
        }
        Command::Events { command } => events::run(&AdminClient::from_cli(&cli)?, command).await,
        Command::Kernel { command } => kernels::run(&AdminClient::from_cli(&cli)?, command).await,
        Command::Devices { json } => devices::run(&AdminClient::from_cli(&cli)?, *json).await,
        Command::Ebpf { command } => ebpf::run(&AdminClient::from_cli(&cli)?, command).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_param("a=b=c").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
        assert_eq!(parse_param("a=").unwrap(), ("a".to_owned(), String::new()));
        assert!(parse_param("=b").is_err());
        assert!(parse_param("ab").is_err());
    }

    #[test]
    fn ebpf_commands_and_deploys_with_an_ebpf_variant_parse() {
        let cli = Cli::try_parse_from([
            "quarry",
            "ebpf",
            "register",
            "count",
            "count.o",
            "--shape",
            "reduce",
            "--framing",
            "bytes",
            "--param",
            "byte",
            "--param",
            "limit=10",
        ])
        .unwrap();
        let Command::Ebpf {
            command: EbpfCommand::Register { name, params, .. },
        } = cli.command
        else {
            panic!("expected ebpf register")
        };
        assert_eq!(name, "count");
        assert_eq!(params, ["byte", "limit=10"]);
        // --ebpf alone stands for the module, beside --kernel too; not with a module file.
        for args in [
            &["quarry", "fn", "deploy", "f", "--ebpf", "crc32c"][..],
            &[
                "quarry", "fn", "deploy", "f", "--kernel", "crc32c", "--ebpf", "crc32c",
            ],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Function {
                command: FunctionCommand::Deploy { ebpf, file, .. },
            } = cli.command
            else {
                panic!("expected fn deploy")
            };
            assert_eq!((ebpf.as_deref(), file), (Some("crc32c"), None));
        }
        assert!(
            Cli::try_parse_from(["quarry", "fn", "deploy", "f", "m.wasm", "--ebpf", "x"]).is_err()
        );
        assert!(Cli::try_parse_from(["quarry", "fn", "deploy", "f"]).is_err());
    }

    #[test]
    fn trigger_add_parses_a_pipeline_and_the_event() {
        let cli = Cli::try_parse_from([
            "quarry",
            "trigger",
            "add",
            "--bucket",
            "b",
            "--event",
            "after-get",
            "--function",
            "f,g",
            "--param",
            "w=1",
        ])
        .unwrap();
        let Command::Trigger {
            command:
                TriggerCommand::Add {
                    event,
                    functions,
                    params,
                    range,
                    ..
                },
        } = cli.command
        else {
            panic!("expected trigger add")
        };
        assert_eq!(event, Event::AfterGet);
        assert_eq!(functions, ["f", "g"]);
        assert_eq!(params, [("w".to_owned(), "1".to_owned())]);
        assert_eq!(range, RangeArg::Refuse);
        assert!(
            Cli::try_parse_from([
                "quarry",
                "trigger",
                "add",
                "--bucket",
                "b",
                "--event",
                "later",
                "--function",
                "f"
            ])
            .is_err()
        );
    }
}
