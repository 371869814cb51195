//! `signet audit`: the audit log printed as a table and exported as JSON
//! lines, the same objects `GET /v1/audit_events` answers with, newest
//! first across accounts and environments. The real binary, on the
//! database of a running server, on SQLite and on PostgreSQL.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use signet::registry::store::NewAuditEvent;
use signet::registry::Environment;

use crate::helpers::{repo, OTHER_SECRET, OTHER_USER, SECRET, USER};
use crate::on_both_databases;
use crate::registry_helpers::{json_of, spawn_registry, Db, RegistryApp};

/// A configuration file naming `app`'s database and accounts.
fn config_file(app: &RegistryApp, dir: &Path) -> std::path::PathBuf {
    let database = app
        .database_url
        .as_ref()
        .map_or_else(String::new, |url| format!("database_url = {url:?}\n"));
    let toml = format!(
        "templates_dir = {templates:?}\nfonts_dir = {fonts:?}\nextra_fonts = []\n\
         data_dir = {data:?}\n{database}\
         [[users]]\nid = \"{USER}\"\nsecrets = [\"{SECRET}\"]\nname = \"Demo Academy\"\n\
         [[users]]\nid = \"{OTHER_USER}\"\nsecrets = [\"{OTHER_SECRET}\"]\nplan = \"custom\"\n\
         rate_limit_per_minute = 4\nbatch_size = 10\n",
        templates = dir.display().to_string(),
        fonts = repo().join("fonts").display().to_string(),
        data = app.data.path().display().to_string(),
    );
    let path = dir.join("signet.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn audit(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_signet"))
        .env_remove("SIGNET_CONFIG")
        .arg("audit")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// The JSON lines `signet audit` printed, after it succeeded.
fn lines(output: Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("{line:?}")))
        .collect()
}

/// An exported line without what the export adds to the API's object.
fn as_the_api_shows_it(line: &Value) -> Value {
    let mut object = line.clone();
    let map = object.as_object_mut().unwrap();
    map.remove("account");
    map.remove("livemode");
    object
}

async fn the_audit_log_exports_as_the_api_shows_it_newest_first(db: Db) {
    let app = spawn_registry(db).await;
    let (_, admin) = app.key(USER, Environment::Live, &["*"]).await;
    app.key(USER, Environment::Test, &["*"]).await;
    app.key(OTHER_USER, Environment::Live, &["*"]).await;
    let body = json!({"scopes": ["audit:read"], "description": "auditor"});
    let (status, made) = json_of(app.post_json("/api_keys", &admin, &body).await).await;
    assert_eq!(status, 201);
    let made_id = made["id"].as_str().unwrap();
    let revoked = app.delete(&format!("/api_keys/{made_id}"), &admin).await;
    assert_eq!(revoked.status(), 200);
    let refused = app.get("/api_keys", made["secret"].as_str().unwrap()).await;
    assert_eq!(refused.status(), 401);
    let (_, api) = json_of(app.get("/audit_events?limit=100", &admin).await).await;
    let api = api["data"].as_array().unwrap().clone();
    let actions: Vec<_> = api.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "auth.failed",
            "api_key.revoke",
            "api_key.create",
            "api_key.create"
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&app, dir.path());
    let live = lines(audit(
        &config,
        &["--user", USER, "--env", "live", "--format", "jsonl"],
    ));
    assert_eq!(
        live.iter().map(as_the_api_shows_it).collect::<Vec<_>>(),
        api
    );
    assert!(live
        .iter()
        .all(|l| l["account"] == USER && l["livemode"] == true));

    // Every account and both environments, merged newest first.
    let all = lines(audit(&config, &["--format", "jsonl"]));
    assert_eq!(all.len(), api.len() + 2, "{all:?}");
    let times: Vec<_> = all.iter().map(|l| l["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let of_user_live: Vec<_> = all
        .iter()
        .filter(|l| l["account"] == USER && l["livemode"] == true)
        .cloned()
        .collect();
    assert_eq!(of_user_live, live);
    let other: Vec<_> = all.iter().filter(|l| l["account"] == OTHER_USER).collect();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0]["actor"], json!({"type": "cli", "id": null}));

    let two = lines(audit(&config, &["--format", "jsonl", "--limit", "2"]));
    assert_eq!(two, all[..2]);
    let future = audit(
        &config,
        &["--format", "jsonl", "--since", "2999-01-01T00:00:00Z"],
    );
    assert!(lines(future).is_empty());
    let past = audit(
        &config,
        &["--format", "jsonl", "--since", "1970-01-01T00:00:00Z"],
    );
    assert_eq!(lines(past), all);
}
on_both_databases!(
    the_audit_log_exports_as_the_api_shows_it_newest_first,
    super::the_audit_log_exports_as_the_api_shows_it_newest_first
);

async fn the_audit_log_prints_as_a_table_and_refuses_an_unknown_account(db: Db) {
    let app = spawn_registry(db).await;
    let (key_id, _) = app.key(USER, Environment::Live, &["*"]).await;
    let (other_id, _) = app.key(OTHER_USER, Environment::Test, &["*"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&app, dir.path());

    let output = audit(&config, &[]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].starts_with("AT") && rows[0].contains("ACTION"),
        "{text}"
    );
    // Newest first: the other account's key was made last.
    assert!(
        rows[1].contains(OTHER_USER) && rows[1].contains(&other_id),
        "{text}"
    );
    assert!(
        rows[1].contains(" test ") && rows[2].contains(" live "),
        "{text}"
    );
    assert!(rows[2].contains("api_key.create") && rows[2].contains(&key_id));
    let one = audit(&config, &["--user", USER, "--limit", "1"]);
    assert_eq!(String::from_utf8(one.stdout).unwrap().lines().count(), 2);

    let unknown = audit(&config, &["--user", "nobody"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("nobody"), "{stderr}");
    let bad_time = audit(&config, &["--since", "yesterday"]);
    assert!(!bad_time.status.success());
}
on_both_databases!(
    the_audit_log_prints_as_a_table_and_refuses_an_unknown_account,
    super::the_audit_log_prints_as_a_table_and_refuses_an_unknown_account
);

async fn an_export_pages_through_every_event_of_every_list(db: Db) {
    let app = spawn_registry(db).await;
    // More than a page (100) in two lists, fewer in a third.
    for (account, live, n) in [(USER, true, 230), (USER, false, 120), (OTHER_USER, true, 7)] {
        for _ in 0..n {
            let event = NewAuditEvent {
                account_id: Some(account.into()),
                livemode: live,
                actor_type: "cli",
                action: "test.event",
                ..NewAuditEvent::default()
            };
            app.registry.store.record(&event).await.unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&app, dir.path());
    let all = lines(audit(&config, &["--format", "jsonl"]));
    assert_eq!(all.len(), 357);
    let ids: std::collections::HashSet<_> = all.iter().map(|l| l["id"].clone()).collect();
    assert_eq!(ids.len(), 357, "no event twice");
    let times: Vec<_> = all.iter().map(|l| l["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
    let test = lines(audit(&config, &["--format", "jsonl", "--env", "test"]));
    assert_eq!(test.len(), 120);
    // A table shows the newest hundred unless told otherwise.
    let table = audit(&config, &[]);
    assert_eq!(
        String::from_utf8(table.stdout).unwrap().lines().count(),
        101
    );
    let table = audit(&config, &["--limit", "300"]);
    assert_eq!(
        String::from_utf8(table.stdout).unwrap().lines().count(),
        301
    );
}
on_both_databases!(
    an_export_pages_through_every_event_of_every_list,
    super::an_export_pages_through_every_event_of_every_list
);
