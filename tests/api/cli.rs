//! `signet sign`: single URLs and CSV files, checked against the server.

use std::process::Command;

use crate::helpers::*;

fn config_file(app: &TestApp) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let toml = format!(
        "templates_dir = {:?}\n[[users]]\nid = \"{USER}\"\nsecrets = [\"{SECRET}\", \"older\"]\n",
        app.templates.path()
    );
    std::fs::write(file.path(), toml).unwrap();
    file
}

/// `signet sign --config <file> --user USER --template CERT --base-url <app>`.
fn sign(app: &TestApp, config: &tempfile::NamedTempFile) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
    cmd.env_remove("SIGNET_CONFIG")
        .args(["sign", "--config"])
        .arg(config.path())
        .args([
            "--user",
            USER,
            "--template",
            CERT,
            "--base-url",
            &app.base_url(),
        ]);
    cmd
}

#[tokio::test]
async fn sign_prints_the_url_the_reference_client_would() {
    let app = spawn_app().await;
    let config = config_file(&app);
    let out = sign(&app, &config)
        .args(["--set", "text_candidate=John Wick"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(
        url,
        app.reference_url(CERT, &[("text_candidate", "John Wick")])
    );
    assert_eq!(app.get(&url).await.status(), 200);
}

#[tokio::test]
async fn sign_refuses_a_name_the_server_would_refuse() {
    let app = spawn_app().await;
    let config = config_file(&app);
    let out = sign(&app, &config)
        .args(["--set", "text_candidate=a\u{202E}b"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("U+202E"));
}

#[tokio::test]
async fn a_csv_is_signed_row_by_row_and_bad_rows_are_reported_not_lost() {
    let app = spawn_app().await;
    let config = config_file(&app);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("recipients.csv");
    let output = dir.path().join("signed.csv");
    std::fs::write(
        &input,
        "text_candidate,text_course\nAda Lovelace,Analytical Engines\n\"Bad \u{202E}name\",X\nGrace Hopper,\"COBOL, 101\"\nonly one field\n",
    )
    .unwrap();
    let out = sign(&app, &config)
        .arg("--csv")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "bad rows must fail the command");
    assert!(stderr.contains("signed 2 of 4 rows"), "{stderr}");
    assert!(
        stderr.contains("line 3") && stderr.contains("line 5"),
        "{stderr}"
    );

    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&output)
        .unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["text_candidate", "text_course", "url"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "a row was lost");
    assert_eq!(&rows[2][1], "COBOL, 101");
    assert!(rows[1][2].is_empty() && rows[3][2].is_empty());
    for row in [&rows[0], &rows[2]] {
        let response = app.get(&row[2]).await;
        assert_eq!(response.status(), 200, "{}", error_of(&response));
    }
    let expected = app.reference_url(
        CERT,
        &[
            ("text_candidate", "Ada Lovelace"),
            ("text_course", "Analytical Engines"),
        ],
    );
    assert_eq!(&rows[0][2], expected);
}

#[test]
fn demo_mode_refuses_an_address_beyond_loopback_unless_asked_for() {
    let out = Command::new(env!("CARGO_BIN_EXE_signet"))
        .env_remove("SIGNET_CONFIG")
        .env("SIGNET_LISTEN", "0.0.0.0:0")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("demo mode listens on loopback only"),
        "{stderr}"
    );
    assert!(!stderr.contains(signet::config::DEMO_SECRET), "{stderr}");
}
