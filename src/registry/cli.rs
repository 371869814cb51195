//! `signet keys create|list|revoke`: the operator's hand on API keys,
//! straight on the database the configuration names; `audit` holds
//! `signet audit`, `issue` `signet issue --csv`.

pub mod audit;
pub mod issue;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::ids::Environment;
use super::keys::Actor;
use super::scope::{Scopes, SCOPES};
use super::{rfc3339, Registry};
use crate::config::Config;

/// `signet keys …`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// TOML configuration file (without one: the demo configuration).
    #[arg(long, env = "SIGNET_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a key; its secret is printed once, on standard output.
    Create {
        /// The account (a configured user id).
        #[arg(long)]
        user: String,
        /// `live` or `test`.
        #[arg(long, value_parser = ["live", "test"])]
        env: String,
        /// A scope (repeatable); `*` for all.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// What the key is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        /// Only this account's keys.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (`key_…`).
        id: String,
    },
}

/// Runs a `keys` command.
pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let registry = Registry::open(&config).await?;
        let result = command(&registry, args.command).await;
        registry.store.close().await;
        result
    })
}

async fn command(registry: &Registry, command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create {
            user,
            env,
            scopes,
            description,
        } => {
            let environment = Environment::parse(&env).context("--env is live or test")?;
            let scopes = Scopes::parse(&scopes).map_err(|unknown| {
                anyhow::anyhow!("unknown scope `{unknown}` (known: {})", SCOPES.join(", "))
            })?;
            let created = registry
                .create_key(&user, environment, scopes, description, &Actor::cli(), None)
                .await?;
            eprintln!(
                "created {} for {user} ({env}); the secret below is shown this once:",
                created.key.id
            );
            println!("{}", created.secret);
        }
        KeysCommand::List { user } => {
            for key in registry.store.all_keys(user.as_deref()).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\tcreated {}\t{}\t{}",
                    key.id,
                    key.account_id,
                    key.environment.name(),
                    key.redacted,
                    key.scopes.to_stored(),
                    rfc3339(key.created_at),
                    key.revoked_at
                        .map_or("active".to_owned(), |t| format!("revoked {}", rfc3339(t))),
                    key.description.unwrap_or_default(),
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let key = registry.revoke_key(&id, None, &Actor::cli()).await?;
            eprintln!(
                "{} revoked at {}",
                key.id,
                key.revoked_at.map(rfc3339).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
