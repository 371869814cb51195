//! `signet issue --csv FILE --template T --user U`: a CSV file issued as
//! a batch, straight on the database the configuration names.
//!
//! The file is read by the API's own CSV reader and accepted as the API
//! accepts a batch (the same header checks, the same rows); this process
//! then works it with its own batch worker — beside any server sharing
//! the database, which may take chunks too — drawing a progress bar on a
//! terminal, and writes each row's outcome as CSV: its certificate id or
//! its error. The exit status is 1 when any row failed.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;
use crate::http::AppState;
use crate::registry::batch::csv::{recipients, MAX_CSV_BYTES};
use crate::registry::batch::{NewBatch, RowError, MAX_BATCH_ROWS};
use crate::registry::certificate::Owner;
use crate::registry::ids::Environment;
use crate::registry::keys::Actor;
use crate::registry::Registry;

/// How often the progress is read.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// Rows of results read at once.
const RESULTS_PAGE: u32 = 100;

/// `signet issue …`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// TOML configuration file (without one: the demo configuration).
    #[arg(long, env = "SIGNET_CONFIG")]
    config: Option<PathBuf>,
    /// The CSV file: a header row of `name`, `email`, the template's
    /// fields and `metadata.<key>` columns, then one row per recipient.
    #[arg(long)]
    csv: PathBuf,
    /// The template every certificate is issued with.
    #[arg(long)]
    template: String,
    /// The account (a configured user id).
    #[arg(long)]
    user: String,
    /// `live` or `test` (sandbox certificates, stamped SPECIMEN).
    #[arg(long, default_value = "live", value_parser = ["live", "test"])]
    env: String,
    /// Whether the certificates are e-mailed (`true` or `false`; every
    /// row then needs an `email`); the account's default when not given.
    #[arg(long)]
    send_email: Option<bool>,
    /// Where the results go, as CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `signet issue`.
pub fn run(args: IssueArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let registry = Registry::open(&config).await?;
        // The server's state checks rows against the templates and fonts
        // as a server would, and starts the batch worker.
        let state = AppState::new(config)
            .map_err(|why| anyhow!(why))?
            .with_registry(registry.clone());
        let result = issue(&registry, &args).await;
        drop(state);
        registry.store.close().await;
        result
    })
}

async fn issue(registry: &Registry, args: &IssueArgs) -> anyhow::Result<ExitCode> {
    let account = registry
        .account(&args.user)
        .ok_or_else(|| anyhow!("no configured user `{}`", args.user))?;
    let environment = Environment::parse(&args.env).context("--env is live or test")?;
    let owner = Owner {
        account_id: &account.id,
        environment,
    };
    let size = std::fs::metadata(&args.csv)
        .with_context(|| format!("reading {}", args.csv.display()))?
        .len();
    if size > MAX_CSV_BYTES as u64 {
        return Err(anyhow!(
            "{} is over {MAX_CSV_BYTES} bytes: split it",
            args.csv.display()
        ));
    }
    let bytes =
        std::fs::read(&args.csv).with_context(|| format!("reading {}", args.csv.display()))?;
    let declaration = registry.batch_template(&account.id, &args.template).await?;
    let rows = recipients(&bytes, &args.template, &declaration, MAX_BATCH_ROWS)
        .with_context(|| format!("reading {}", args.csv.display()))?;
    let new = NewBatch::Issue {
        template_id: args.template.clone(),
        send_email: args.send_email.unwrap_or(account.email_by_default),
        rows,
    };
    let batch = registry
        .create_batch(owner, new, MAX_BATCH_ROWS, &Actor::cli(), None)
        .await?;
    eprintln!("accepted {} ({} rows)", batch.id, batch.total);

    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(
            Some(u64::try_from(batch.total).unwrap_or(0)),
            ProgressDrawTarget::stderr(),
        )
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let done = loop {
        let now = registry.batch(owner, &batch.id).await?;
        bar.set_position(u64::try_from(now.completed + now.failed).unwrap_or(0));
        if now.status == "completed" {
            break now;
        }
        tokio::time::sleep(PROGRESS_EVERY).await;
    };
    bar.finish_and_clear();

    let sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut results = csv::Writer::from_writer(sink);
    results.write_record([
        "row",
        "status",
        "certificate_id",
        "error_code",
        "error_param",
        "error_message",
    ])?;
    let mut after = 0;
    loop {
        let items = registry
            .store
            .batch_items(&batch.id, after, RESULTS_PAGE, None)
            .await?;
        for item in items.iter().take(RESULTS_PAGE as usize) {
            let error: Option<RowError> = item
                .error
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok());
            let (code, param, message) = error.map_or_else(Default::default, |e| {
                (e.code, e.param.unwrap_or_default(), e.message)
            });
            results.write_record([
                item.row.to_string(),
                item.status.clone(),
                item.certificate_id.clone().unwrap_or_default(),
                code,
                param,
                message,
            ])?;
            after = item.row;
        }
        if items.len() <= RESULTS_PAGE as usize {
            break;
        }
    }
    results.flush()?;
    eprintln!(
        "{}: {} issued, {} failed",
        batch.id, done.completed, done.failed
    );
    Ok(if done.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
