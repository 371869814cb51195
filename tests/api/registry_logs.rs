//! No secret reaches the server's log, even with every crate at `trace`
//! (sqlx's statements, hyper, the registry's own lines): API keys made by
//! the CLI and by the API, used, revoked and presented wrong; signing
//! secrets from the file and from the environment, used to render; the
//! database's password. The log read is all the process wrote, stderr
//! and stdout, to its end.

use serde_json::{json, Value};
use signet::registry::ids::new_id;

use crate::helpers::{CERT, USER};
use crate::on_both_databases;
use crate::registry_helpers::{new_postgres_database, Db};
use crate::registry_process::ServerSetup;

/// Characters after `sk_live_`/`sk_test_` that make a text a key rather
/// than a list's redacted form (which shows four).
const KEY_SHAPED: usize = 8;

/// A body that comes back `status`, as JSON.
async fn expect(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The first text in `log` shaped like a key secret, if any.
fn key_shaped(log: &str) -> Option<&str> {
    ["sk_live_", "sk_test_"].iter().find_map(|prefix| {
        log.match_indices(prefix).find_map(|(at, _)| {
            let rest = &log[at + prefix.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
            (digits >= KEY_SHAPED).then(|| &log[at..at + prefix.len() + digits])
        })
    })
}

async fn no_key_or_secret_reaches_the_log_even_at_trace(db: Db) {
    let signing = format!("file-secret-{}", new_id("").unwrap());
    // Shorter than recommended: the start warns about it, by user only.
    let short = format!("short-{}", &new_id("").unwrap()[..10]);
    let from_env = format!("env-secret-{}", new_id("").unwrap());
    let password = format!("pw-{}", new_id("").unwrap());
    let database_url = match db {
        Db::Sqlite => None,
        // Trust authentication ignores the password; the server still
        // holds it in its URL.
        Db::Postgres => Some(new_postgres_database().replacen(
            "postgres://postgres@",
            &format!("postgres://postgres:{password}@"),
            1,
        )),
    };
    let setup = ServerSetup::with_users(
        database_url.as_deref(),
        &format!(
            "[[users]]\nid = \"{USER}\"\nsecrets = [\"{signing}\", \"{short}\"]\n\
             secrets_env = \"ACADEMY_SIGNING_SECRETS\"\nplan = \"custom\"\n\
             rate_limit_per_minute = 1000\nbatch_size = 100\n"
        ),
    );
    let env = [
        ("ACADEMY_SIGNING_SECRETS", from_env.as_str()),
        ("RUST_LOG", "trace"),
    ];

    // The CLI prints a new key's secret on stdout, once; nothing else it
    // writes may hold a secret.
    let cli_env = [env[0], env[1], ("SIGNET_LOG", "trace")];
    let made = setup.cli(
        &[
            "keys", "create", "--user", USER, "--env", "live", "--scope", "*",
        ],
        &cli_env,
    );
    let admin = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let listed = setup.cli(&["keys", "list"], &cli_env);
    let mut elsewhere = String::from_utf8_lossy(&made.stderr).into_owned();
    for part in [&listed.stdout, &listed.stderr] {
        elsewhere.push_str(&String::from_utf8_lossy(part));
    }

    let mut server = setup.start("trace", &env);
    let http = reqwest::Client::new();
    let v1 = |path: &str| server.url(path);
    let key = expect(
        http.post(v1("/api_keys"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(json!({"scopes": ["certificates:write", "certificates:read"]}).to_string())
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let by_api = key["secret"].as_str().unwrap().to_owned();
    let certificate = json!({
        "template_id": CERT,
        "recipient": {"name": "Maria Andersson"},
        "fields": {"course_name": "Advanced Project Management"},
    });
    let issue = http
        .post(v1("/certificates"))
        .bearer_auth(&by_api)
        .header("content-type", "application/json")
        .body(certificate.to_string());
    expect(issue.send().await.unwrap(), 201).await;
    let list = || http.get(v1("/certificates"));
    expect(list().bearer_auth(&by_api).send().await.unwrap(), 200).await;
    let revoke = http.delete(v1(&format!("/api_keys/{}", key["id"].as_str().unwrap())));
    expect(revoke.bearer_auth(&admin).send().await.unwrap(), 200).await;

    // Failed authentications: revoked, unknown of the right shape in
    // either environment, malformed, mistyped, under another scheme.
    let unknown_live = format!("sk_live_{}{}", new_id("").unwrap(), new_id("").unwrap());
    let unknown_test = format!("sk_test_{}{}", new_id("").unwrap(), new_id("").unwrap());
    let malformed = format!("sk_live_{}", &new_id("").unwrap()[..12]);
    let (kept, last) = admin.split_at(admin.len() - 1);
    let mistyped = format!("{kept}{}", if last == "x" { "y" } else { "x" });
    for wrong in [&by_api, &unknown_live, &unknown_test, &malformed, &mistyped] {
        expect(list().bearer_auth(wrong).send().await.unwrap(), 401).await;
    }
    let basic = list().header("authorization", format!("Basic {admin}"));
    expect(basic.send().await.unwrap(), 401).await;
    // A secret where an id belongs: the path is logged.
    let confused = http.delete(v1(&format!("/api_keys/{admin}")));
    expect(confused.bearer_auth(&admin).send().await.unwrap(), 404).await;

    // Every signing secret signs a URL that renders; a wrong one fails.
    let mods = r#"[{"name":"text_candidate","text":"Ada Lovelace"}]"#;
    let base = format!("http://{}", server.address);
    for (secret, status) in [
        (&signing, 200),
        (&short, 200),
        (&from_env, 200),
        (&unknown_live, 403),
    ] {
        let url = signet::signing::signed_url(&base, USER, CERT, "png", mods, secret);
        let got = http.get(&url).send().await.unwrap();
        let error = got.headers().get("x-stencil-error").cloned();
        assert_eq!(got.status().as_u16(), status, "{url}: {error:?}");
    }

    let log = server.kill();
    // The log is the verbose one, and whole: the statements sqlx ran, the
    // registry's lines with the refusals, the renders.
    for expected in ["sqlx::query", "registry request", "status=401", "rendered"] {
        assert!(
            log.contains(expected),
            "{expected} is not in the log:\n{log}"
        );
    }
    let secrets = [
        ("the CLI's key", admin.as_str()),
        ("the API's key", &by_api),
        ("an unknown live key", &unknown_live),
        ("an unknown test key", &unknown_test),
        ("a malformed key", &malformed),
        ("a mistyped key", &mistyped),
        ("the file's signing secret", &signing),
        ("a short signing secret", &short),
        ("the environment's signing secret", &from_env),
        ("the database password", &password),
    ];
    for (what, secret) in secrets {
        // A key without its prefix is as good as with it.
        let body = secret.get(8..).filter(|_| secret.starts_with("sk_"));
        for text in std::iter::once(secret).chain(body) {
            assert!(!log.contains(text), "{what} is in the server's log:\n{log}");
            assert!(!elsewhere.contains(text), "{what} is in the CLI's output");
        }
    }
    assert_eq!(key_shaped(&log), None, "a key-shaped text in the log");
    assert!(!log.contains("whsec_"), "a webhook secret in the log");
}

on_both_databases!(
    no_key_or_secret_reaches_the_log_even_at_trace,
    super::no_key_or_secret_reaches_the_log_even_at_trace
);
