//! `reportroot`: serve Microsoft Graph's `/reports` API on SQLite, with demo data and tokens.

/// mimalloc: the server and the importer allocate many small, short-lived buffers; profiles
/// showed glibc malloc as the top cost of bulk import.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod apps;
mod args;
mod certs;
mod commands;
mod config;
mod data;
mod database;
mod demo;
mod errors;
mod reports;
mod serve;
mod sync;
mod users;

use std::io::Write;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Parser;

use crate::args::{Cli, LogFormat};

/// Sends logs to standard error, filtered by `RUST_LOG` (default `info`).
fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    // Few blocking threads: SQLite work is bounded by its connection pool anyway, and every
    // extra thread keeps its own stack and allocator cache (peak RSS).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow!(error).context("cannot start the async runtime")),
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// Prints `error` with its causes on one line and returns the failure exit code.
fn fail(error: &anyhow::Error) -> ExitCode {
    let _ = writeln!(
        std::io::stderr(),
        "reportroot: {}",
        errors::one_line(error.as_ref())
    );
    ExitCode::FAILURE
}
