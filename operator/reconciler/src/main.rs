//! The `krait-operator` binary: `crd` prints the CRDs, `crd-reference` their field reference,
//! `render` the objects built for a `KafkaCluster` manifest, `run` runs the controllers, `rack`
//! is the init step of rack-aware broker pods.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use krait_operator::cluster::build::{DEFAULT_OPERATOR_IMAGE, DEFAULT_RACK_CLUSTER_ROLE, RackInit};
use krait_operator::leader::LeaseConfig;
use krait_operator::rack;
use krait_operator::run::{RunConfig, run};

/// Kubernetes operator for Krait clusters and topics.
#[derive(Debug, Parser)]
#[command(name = "krait-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML (or write one file each into --out-dir).
    Crd {
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Print the CRDs' field reference as Markdown (or write it to --out), as kept in
    /// docs/crd-reference.md.
    CrdReference {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print (multi-document YAML) the objects the operator would apply for the KafkaCluster
    /// manifests in a file, without an API server: the same validation and build as a reconcile
    /// of a new cluster. Secrets holding generated keys are not shown. A PodMonitor
    /// (spec.metrics.podMonitor) is shown when enabled, though the operator creates it only
    /// where the API server serves the kind, which render cannot know.
    Render {
        /// The manifest file (`-` reads standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace of a cluster whose manifest names none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// Run the KafkaCluster, KafkaTopic and KafkaUser controllers.
    Run(RunArgs),
    /// Write the rack of the Node this pod runs on (its topology label) to a file: the init
    /// container of brokers with spec.rack, with the pod's service account. Fails when the
    /// Node lacks the label.
    Rack(RackArgs),
}

#[derive(Debug, Args)]
struct RackArgs {
    /// The Node's name (the pod's spec.nodeName, from the downward API).
    #[arg(long, env = "NODE_NAME")]
    node: String,
    /// The Node label holding the rack, e.g. topology.kubernetes.io/zone.
    #[arg(long)]
    topology_key: String,
    /// The file to write the rack to (what the broker's --rack-file reads).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Namespaces to watch, comma-separated; empty watches every namespace.
    #[arg(
        long,
        env = "KRAIT_OPERATOR_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    namespaces: Vec<String>,

    /// Address of the HTTP endpoint (/healthz, /readyz, /metrics).
    #[arg(
        long,
        env = "KRAIT_OPERATOR_HTTP_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    http_listen: SocketAddr,

    /// Elect a leader through a Lease, so several replicas can run with one active.
    #[arg(long, env = "KRAIT_OPERATOR_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,

    /// Name of the Lease.
    #[arg(
        long,
        env = "KRAIT_OPERATOR_LEASE_NAME",
        default_value = "krait-operator"
    )]
    lease_name: String,

    /// Namespace of the Lease (the operator's own, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,

    /// This replica's identity in the Lease (its pod name, from the downward API).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,

    /// Seconds a leader's lease lasts without renewal.
    #[arg(long, env = "KRAIT_OPERATOR_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,

    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `krait_operator=debug`).
    #[arg(long, env = "KRAIT_OPERATOR_LOG", default_value = "info")]
    log: String,

    /// Image of the init container that gives rack-aware brokers their rack: the operator's
    /// own (the chart passes it), which holds `krait-operator rack`.
    #[arg(long, env = "KRAIT_OPERATOR_IMAGE", default_value = DEFAULT_OPERATOR_IMAGE)]
    operator_image: String,

    /// The ClusterRole (`get` on nodes) each rack-aware cluster's brokers are bound to; the
    /// chart installs it as `<release>-broker-rack`.
    #[arg(
        long,
        env = "KRAIT_OPERATOR_RACK_CLUSTER_ROLE",
        default_value = DEFAULT_RACK_CLUSTER_ROLE
    )]
    rack_cluster_role: String,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd { out_dir } => print_crds(out_dir),
        Command::CrdReference { out } => print_crd_reference(out),
        Command::Render { file, namespace } => print_render(&file, &namespace),
        Command::Run(args) => run_operator(args),
        Command::Rack(args) => write_rack(args),
    }
}

fn write_rack(args: RackArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let rack = runtime.block_on(rack::write_own_node_rack(
        &args.node,
        &args.topology_key,
        &args.out,
    ))?;
    tracing::info!(node = %args.node, key = %args.topology_key, %rack, out = %args.out.display(), "wrote the broker's rack");
    Ok(())
}

fn print_crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let crds = krait_crd::manifests::all().context("rendering CRDs")?;
    match out_dir {
        Some(dir) => {
            for (file, yaml) in crds {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        None => {
            let docs: Vec<String> = crds.into_iter().map(|(_, y)| y).collect();
            print!("{}", docs.join("---\n"));
        }
    }
    Ok(())
}

fn print_crd_reference(out: Option<PathBuf>) -> anyhow::Result<()> {
    let reference = krait_crd::reference::all().context("rendering the CRD reference")?;
    match out {
        Some(path) => std::fs::write(&path, reference)
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{reference}"),
    }
    Ok(())
}

fn print_render(file: &std::path::Path, namespace: &str) -> anyhow::Result<()> {
    let manifests = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let rendered = krait_operator::render::render(&manifests, namespace)
        .with_context(|| format!("rendering {}", file.display()))?;
    print!("{rendered}");
    Ok(())
}

fn run_operator(args: RunArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log)
                .with_context(|| format!("--log {:?}", args.log))?,
        )
        .init();
    anyhow::ensure!(
        args.lease_seconds >= 3,
        "--lease-seconds must be at least 3"
    );
    let identity = match args.identity {
        Some(id) => id,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .context("no --identity / POD_NAME and no hostname")?,
    };
    let config = RunConfig {
        namespaces: args
            .namespaces
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect(),
        http_listen: args.http_listen,
        lease: args.leader_election.then(|| LeaseConfig {
            namespace: args.lease_namespace,
            name: args.lease_name,
            identity: identity.clone(),
            duration: Duration::from_secs(args.lease_seconds),
        }),
        identity,
        rack: RackInit {
            image: args.operator_image,
            cluster_role: args.rack_cluster_role,
        },
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run(config)).context("krait-operator run")
}
