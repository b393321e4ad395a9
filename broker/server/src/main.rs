//! `krait-broker`: parse the configuration, set up logging, serve until SIGTERM or SIGINT.

use std::io::IsTerminal;
use std::process::ExitCode;

use krait_server::config::BrokerConfig;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: krait_protocol::budget::GuardedAlloc = krait_protocol::budget::GuardedAlloc;

fn main() -> ExitCode {
    krait_protocol::budget::GuardedAlloc::return_large_blocks_to_the_kernel();
    let config = BrokerConfig::load();
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|e| {
        eprintln!(
            "warning: --log {:?} is not a valid filter ({e}); using info",
            config.log
        );
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(e) = krait_protocol::budget::GuardedAlloc::trim_above(config.trim_above_bytes()) {
        tracing::warn!("cannot start the heap trimming thread: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let termination_message = config.termination_message_path.clone();
    match runtime.block_on(krait_server::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let why = format!("{e:#}");
            tracing::error!("{why}");
            if let Some(path) = termination_message {
                write_termination_message(&path, &why);
            }
            ExitCode::FAILURE
        }
    }
}

/// Kubernetes keeps 4096 bytes of a termination message.
const TERMINATION_MESSAGE_MAX: usize = 4096;

/// Leaves `why` where the orchestrator looks for the reason a container stopped.
fn write_termination_message(path: &std::path::Path, why: &str) {
    let mut end = why.len().min(TERMINATION_MESSAGE_MAX);
    while !why.is_char_boundary(end) {
        end -= 1;
    }
    if let Err(e) = std::fs::write(path, &why[..end]) {
        tracing::warn!(path = %path.display(), "cannot write the termination message: {e}");
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot install SIGTERM handler: {e}");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
    }
}
