//! The command line: `signet serve`, `signet sign`, `signet keys` and
//! `signet audit`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::http::{self, AppState};
use crate::registry::scope::Scopes;
use crate::registry::{Actor, Environment, Registry};
use crate::sign;

/// Signed-image rendering server.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (demo mode, on loopback, when no config is given).
    Serve {
        /// TOML configuration file.
        #[arg(long, env = "SIGNET_CONFIG")]
        config: Option<PathBuf>,
        /// Demo mode even on a non-loopback address: the demo secret is
        /// public, so anyone who reaches the server can sign URLs.
        #[arg(long, conflicts_with = "config")]
        demo: bool,
    },
    /// Print signed URLs, for one recipient or a whole CSV file.
    Sign(Box<sign::SignArgs>),
    /// Make, list and revoke the registry's API keys.
    Keys(crate::registry::cli::KeysArgs),
    /// Print or export (JSON lines) the registry's audit log, newest first.
    Audit(crate::registry::cli::audit::AuditArgs),
    /// Issue a certificate per row of a CSV file, as a batch; prints each
    /// row's certificate id or error as CSV, exits 1 if any row failed.
    Issue(Box<crate::registry::cli::issue::IssueArgs>),
}

/// Runs the command line; errors print as one message.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, demo } => serve(config, demo),
        Command::Sign(args) => sign::run(*args),
        Command::Keys(args) => crate::registry::cli::run(args),
        Command::Audit(args) => crate::registry::cli::audit::run(args),
        Command::Issue(args) => crate::registry::cli::issue::run(*args),
    }
}

fn serve(config_path: Option<PathBuf>, public_demo: bool) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = Config::load(config_path.as_deref(), std::env::vars())?;
    let listen = config.listen.clone();
    if config.demo && !public_demo && !is_loopback(&listen) {
        anyhow::bail!(
            "no --config given, so this would be demo mode, whose secret is public, on {listen}; \
             demo mode listens on loopback only (127.0.0.1, ::1, localhost) unless started with \
             `signet serve --demo`. Give --config (or SIGNET_CONFIG) to serve real accounts."
        );
    }
    let demo = config.demo;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let registry = Registry::open(&config)
            .await
            .context("opening the registry")?;
        let demo_key = if demo {
            Some(demo_key(&registry).await?)
        } else {
            None
        };
        let state = AppState::new(config)
            .map_err(anyhow::Error::msg)?
            .with_registry(registry);
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, fonts = state.renderer.font_faces(), "listening");
        if demo {
            print_demo_banner(&address.to_string(), demo_key.as_deref().unwrap_or(""));
        }
        http::serve(listener, state, http::shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// True when `listen` (`host:port`) names a loopback address.
fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A fresh test key with every scope for the demo account: demo mode has
/// no operator to run `signet keys create`.
async fn demo_key(registry: &Registry) -> anyhow::Result<String> {
    let created = registry
        .create_key(
            config::DEMO_USER,
            Environment::Test,
            Scopes::parse(&["*"]).map_err(anyhow::Error::msg)?,
            Some("demo mode".into()),
            &Actor::cli(),
            None,
        )
        .await?;
    Ok(created.secret)
}

fn print_demo_banner(address: &str, test_key: &str) {
    let host = address.replace("0.0.0.0", "127.0.0.1");
    let json = r#"[{"name":"text_candidate","text":"Ada Lovelace"}]"#;
    let url = crate::signing::signed_url(
        &format!("http://{host}"),
        config::DEMO_USER,
        config::DEMO_TEMPLATE,
        "png",
        json,
        config::DEMO_SECRET,
    );
    eprintln!(
        "\n  *** DEMO MODE ***  no --config given: serving the shipped templates with the\n  \
         public demo secret `{}`. Do not expose this server.\n\n  Open this signed certificate URL:\n",
        config::DEMO_SECRET
    );
    println!("  {url}\n");
    eprintln!("  The registry's API is at http://{host}/v1; a test key for the demo account:\n");
    println!("  {test_key}\n");
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNET_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
