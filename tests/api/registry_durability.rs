//! A key whose `201` reached the client survives `kill -9` of the server:
//! the real binary, killed without a chance to flush anything, restarted
//! on the same SQLite file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::helpers::{repo, SECRET, USER};

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("signet.toml");
    let templates = dir.join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ntemplates_dir = \"templates\"\nfonts_dir = {:?}\n\
             extra_fonts = []\ndata_dir = \"data\"\n[[users]]\nid = \"{USER}\"\nsecrets = [\"{SECRET}\"]\n",
            repo().join("fonts").display().to_string()
        ),
    )
    .unwrap();
    path
}

/// Starts `signet serve` and returns it with the address it listens on.
fn start(config: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["serve", "--config"])
        .arg(config)
        .env("SIGNET_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the signet binary starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server says where it listens")
            .unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading, so a full pipe never blocks the server's logging.
    std::thread::spawn(move || lines.for_each(drop));
    (child, address)
}

#[tokio::test]
async fn a_key_created_over_the_api_survives_kill_dash_nine() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let made = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args([
            "keys",
            "create",
            "--user",
            USER,
            "--env",
            "live",
            "--scope",
            "keys:write",
        ])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let admin = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(admin.starts_with("sk_live_"), "{admin}");

    let client = reqwest::Client::new();
    let (mut server, address) = start(&config);
    let created = client
        .post(format!("http://{address}/v1/api_keys"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body((json!({"scopes": ["keys:write"]})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let key: serde_json::Value = created
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let secret = key["secret"].as_str().unwrap().to_owned();
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();

    let (mut server, address) = start(&config);
    let listed = client
        .get(format!("http://{address}/v1/api_keys"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let status = listed.status();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(status, 200);

    // The CLI sees both keys, and revokes one.
    let list = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["keys", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(!text.contains(&secret) && !text.contains(&admin), "{text}");
    let id = key["id"].as_str().unwrap();
    let revoked = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["keys", "revoke", id, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let list = Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["keys", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with(id) && l.contains("revoked")),
        "{text}"
    );
}

/// SQLite's write lock held elsewhere past the busy timeout: a create is
/// answered `503 unavailable` with `Retry-After` (a passing state, not a
/// fault), and succeeds once the lock is given back.
#[tokio::test]
async fn a_write_lock_held_elsewhere_is_unavailable_not_an_error() {
    use sqlx::Connection;
    let app =
        crate::registry_helpers::spawn_registry_with_templates(crate::registry_helpers::Db::Sqlite)
            .await;
    let (_, key) = app
        .key(
            crate::helpers::USER,
            signet::registry::Environment::Live,
            &["*"],
        )
        .await;
    let file = app.data.path().join("registry.sqlite3");
    let mut holder =
        sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
    sqlx::Executor::execute(&mut holder, "BEGIN IMMEDIATE")
        .await
        .unwrap();
    let body = crate::registry_certificates::maria();
    let response = app.post_json("/certificates", &key, &body).await;
    assert_eq!(response.headers()["retry-after"], "1");
    crate::registry_helpers::expect_error(response, 503, "unavailable").await;
    sqlx::Executor::execute(&mut holder, "ROLLBACK")
        .await
        .unwrap();
    let (status, _) =
        crate::registry_helpers::json_of(app.post_json("/certificates", &key, &body).await).await;
    assert_eq!(status, 201);
}
