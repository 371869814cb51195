//! `signet audit`: the audit log, newest first, as a table to read or
//! exported as JSON lines, straight from the database the configuration
//! names. Nothing here writes to the log or deletes from it.
//!
//! The store lists one account's events in one environment a page at a
//! time, with the query `GET /v1/audit_events` uses; for several accounts
//! or both environments those lists are merged as they are read, newest
//! first, so an export of any length holds one page per list in memory.
//! An event no account owns (a failed authentication with an unknown key)
//! is in no account's list, so in no export.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::config::Config;
use crate::registry::audit::AuditEventObject;
use crate::registry::ids::Environment;
use crate::registry::store::{AuditEvent, Store};
use crate::registry::{rfc3339, Registry};

/// Events a text table shows unless `--limit` says otherwise: a table is
/// for reading, an export (`jsonl`) is whole.
const TEXT_LIMIT: u64 = 100;
/// Events read from the store at a time, per account and environment.
const PAGE: u32 = 100;

/// `signet audit …`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// TOML configuration file (without one: the demo configuration).
    #[arg(long, env = "SIGNET_CONFIG")]
    config: Option<PathBuf>,
    /// Only this account's events (default: every account's).
    #[arg(long)]
    user: Option<String>,
    /// Only `live` or `test` events (default: both).
    #[arg(long, value_parser = ["live", "test"])]
    env: Option<String>,
    /// Only events at or after this RFC 3339 time (`2026-03-03T09:15:00Z`).
    #[arg(long, value_parser = parse_since)]
    since: Option<i64>,
    /// At most this many events (default: 100 for text, all for jsonl).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// `text`, a table, or `jsonl`, one event object a line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Jsonl,
}

/// A line of the export: the API's event object, and whose it is (one
/// export may hold several accounts and both environments).
#[derive(Serialize)]
struct Exported<'a> {
    #[serde(flatten)]
    event: AuditEventObject,
    account: &'a str,
    livemode: bool,
}

/// Runs `signet audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let registry = Registry::open(&config).await?;
        let result = print(&registry, &args).await;
        registry.store.close().await;
        result
    })
}

async fn print(registry: &Registry, args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let store = &registry.store;
    let accounts = match &args.user {
        Some(user) if store.account_exists(user).await? => vec![user.clone()],
        Some(user) => anyhow::bail!("no account `{user}` in the registry"),
        None => store.account_ids().await?,
    };
    let environments = match args.env.as_deref() {
        Some(name) => vec![Environment::parse(name).context("--env is live or test")?],
        None => vec![Environment::Live, Environment::Test],
    };
    let mut log = Merged {
        lists: accounts
            .iter()
            .flat_map(|account| environments.iter().map(|e| List::new(account, *e)))
            .collect(),
    };
    let limit = match (args.limit, args.format) {
        (Some(limit), _) => Some(limit),
        (None, Format::Text) => Some(TEXT_LIMIT),
        (None, Format::Jsonl) => None,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut rows = Vec::new();
    let mut count = 0;
    while limit.is_none_or(|limit| count < limit) {
        let Some((list, event)) = log.next(store).await? else {
            break;
        };
        if args.since.is_some_and(|since| event.at < since) {
            break;
        }
        count += 1;
        match args.format {
            Format::Jsonl => {
                let line = Exported {
                    event: AuditEventObject::from(event),
                    account: &list.account,
                    livemode: list.environment.is_live(),
                };
                let written = serde_json::to_writer(&mut out, &line)
                    .map_err(io::Error::from)
                    .and_then(|()| out.write_all(b"\n"));
                if let Some(code) = ended(written)? {
                    return Ok(code);
                }
            }
            Format::Text => rows.push(row(&list.account, list.environment, event)),
        }
    }
    let written = match args.format {
        Format::Text => write_table(&mut out, &rows).and_then(|()| out.flush()),
        Format::Jsonl => out.flush(),
    };
    Ok(ended(written)?.unwrap_or(ExitCode::SUCCESS))
}

/// A write's outcome: a reader that went away (`signet audit | head`)
/// ends the output quietly, as it would for any Unix tool.
fn ended(written: io::Result<()>) -> anyhow::Result<Option<ExitCode>> {
    match written {
        Ok(()) => Ok(None),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(Some(ExitCode::SUCCESS)),
        Err(error) => Err(error).context("writing the audit log"),
    }
}

fn parse_since(text: &str) -> Result<i64, String> {
    let refused = || format!("`{text}` is not an RFC 3339 time such as 2026-03-03T09:15:00Z");
    let at = humantime::parse_rfc3339(text).map_err(|_| refused())?;
    let us = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| refused())?
        .as_micros();
    i64::try_from(us).map_err(|_| refused())
}

/// One account's events in one environment, newest first, read a page
/// at a time.
struct List {
    account: String,
    environment: Environment,
    page: VecDeque<AuditEvent>,
    /// The cursor of the next page.
    after: Option<String>,
    more: bool,
}

impl List {
    fn new(account: &str, environment: Environment) -> List {
        List {
            account: account.to_owned(),
            environment,
            page: VecDeque::new(),
            after: None,
            more: true,
        }
    }

    /// The newest event not yet taken, reading the next page if need be.
    async fn head(&mut self, store: &Store) -> anyhow::Result<Option<&AuditEvent>> {
        if self.page.is_empty() && self.more {
            let mut events = store
                .list_audit(&self.account, self.environment, PAGE, self.after.as_deref())
                .await?
                // The cursor is an event just read, and events are never
                // deleted.
                .context("an audit event vanished while the log was read")?;
            self.more = events.len() > PAGE as usize;
            events.truncate(PAGE as usize);
            self.after = events.last().map(|e| e.id.clone());
            self.page = events.into();
        }
        Ok(self.page.front())
    }
}

/// Several lists as one, newest first.
struct Merged {
    lists: Vec<List>,
}

impl Merged {
    /// The newest event of all lists, with its list.
    async fn next(&mut self, store: &Store) -> anyhow::Result<Option<(&List, AuditEvent)>> {
        let mut newest: Option<(usize, i64, String)> = None;
        for (n, list) in self.lists.iter_mut().enumerate() {
            if let Some(event) = list.head(store).await? {
                // The order of each list: time, then id.
                let later = newest
                    .as_ref()
                    .is_none_or(|(_, at, id)| (event.at, &event.id) > (*at, id));
                if later {
                    newest = Some((n, event.at, event.id.clone()));
                }
            }
        }
        let Some((n, _, _)) = newest else {
            return Ok(None);
        };
        let list = &mut self.lists[n];
        Ok(list.page.pop_front().map(|event| (&*list, event)))
    }
}

const HEADER: [&str; 10] = [
    "AT", "ACCOUNT", "ENV", "ACTOR", "ACTION", "TARGET", "STATUS", "IP", "REQUEST", "CHANGES",
];

/// A table row: every cell escaped (the log holds text clients sent), an
/// absent value as `-`.
fn row(account: &str, environment: Environment, event: AuditEvent) -> Vec<String> {
    let cell = |text: Option<&str>| text.map_or_else(|| "-".to_owned(), crate::http::escape);
    let actor = match &event.actor_id {
        Some(id) => format!("{}:{id}", event.actor_type),
        None => event.actor_type.clone(),
    };
    vec![
        rfc3339(event.at),
        cell(Some(account)),
        environment.name().to_owned(),
        cell(Some(&actor)),
        cell(Some(&event.action)),
        cell(event.target.as_deref()),
        event
            .status
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        cell(event.ip.as_deref()),
        cell(event.request_id.as_deref()),
        cell(event.changes.map(|c| c.to_string()).as_deref()),
    ]
}

/// The rows under the header, each column as wide as its widest cell.
fn write_table(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    let header: Vec<String> = HEADER.iter().map(|h| (*h).to_owned()).collect();
    let mut widths = vec![0; HEADER.len()];
    for cells in std::iter::once(&header).chain(rows) {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for cells in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (n, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if n + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_lines_its_columns_up_and_escapes_what_clients_sent() {
        let event = AuditEvent {
            id: "ae_1".into(),
            at: 1_772_529_300_000_000,
            actor_type: "api_key".into(),
            actor_id: Some("key_1".into()),
            action: "certificate.revoke".into(),
            target: Some("cert_\u{202e}1".into()),
            request_id: Some("req_1".into()),
            ip: None,
            status: Some(200),
            changes: None,
        };
        let rows = vec![row("acme", Environment::Live, event)];
        let mut out = Vec::new();
        write_table(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("2026-03-03T09:15:00Z  acme     live  api_key:key_1"));
        assert!(lines[1].contains("cert_\\u{202e}1"), "{text}");
        assert_eq!(lines[0].find("ACTION"), lines[1].find("certificate.revoke"));
        assert_eq!(lines[0].find("CHANGES"), lines[1].rfind('-'), "{text}");
    }

    #[test]
    fn since_is_an_rfc_3339_time() {
        assert_eq!(parse_since("1970-01-01T00:00:01Z"), Ok(1_000_000));
        assert!(parse_since("yesterday").is_err());
    }
}
