//! `signet issue --csv FILE --template T`, the real binary on its
//! configuration's database: each row issued, its outcome written as CSV
//! (certificate id or error), exit status 1 when any row failed, and the
//! certificates there for a server on the same data.

use std::process::{Command, Output};

use crate::helpers::{CERT, USER};
use crate::registry_process::ServerSetup;
use crate::registry_storm::client;

/// `signet issue` on `setup` with `csv` as the file; `out` names the
/// results file, else they go to standard output.
fn issue(setup: &ServerSetup, csv: &str, out: Option<&str>) -> Output {
    let file = setup.dir.path().join("graduates.csv");
    std::fs::write(&file, csv).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_signet"));
    command
        .args(["issue", "--csv"])
        .arg(&file)
        .args(["--template", CERT, "--user", USER, "--config"])
        .arg(&setup.config)
        .env_clear();
    if let Some(out) = out {
        command.arg("--out").arg(setup.dir.path().join(out));
    }
    command.output().expect("the signet binary runs")
}

/// The results CSV's rows, header first.
fn rows(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn a_csv_file_is_issued_with_each_rows_outcome_written() {
    let setup = ServerSetup::new(None);
    let output = issue(
        &setup,
        "name,email,course_name\nAnna Svensson,anna@example.org,Welding\n\"Ek, Bo\",,Carpentry\n",
        Some("results.csv"),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("2 issued, 0 failed"), "{stderr}");
    let results = rows(&std::fs::read_to_string(setup.dir.path().join("results.csv")).unwrap());
    assert_eq!(
        results[0],
        [
            "row",
            "status",
            "certificate_id",
            "error_code",
            "error_param",
            "error_message"
        ]
    );
    assert_eq!(results.len(), 3);
    let key = setup.create_key(&["certificates:read"]);
    let server = setup.start("info", &[]);
    let http = client();
    for (row, name) in results[1..].iter().zip(["Anna Svensson", "Ek, Bo"]) {
        assert_eq!(row[1], "completed");
        let response = http
            .get(server.url(&format!("/certificates/{}", row[2])))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let cert: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(cert["recipient"]["name"], name);
    }
}

#[test]
fn a_failed_row_is_reported_in_the_results_and_the_exit_status() {
    let setup = ServerSetup::new(None);
    let output = issue(
        &setup,
        "name,email,course_name\nAnna,anna@example.org,Welding\nBo,bo-at-example,Welding\n",
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    let results = rows(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(results.len(), 3);
    assert_eq!(results[1][1], "completed");
    assert_eq!(
        &results[2][..5],
        ["2", "failed", "", "invalid_field", "recipient.email"]
    );
    assert!(results[2][5].contains("e-mail"), "{:?}", results[2]);
}

#[test]
fn a_file_the_header_makes_unusable_issues_nothing() {
    let setup = ServerSetup::new(None);
    let output = issue(&setup, "name,colour\nAnna,red\n", None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("colour") && stderr.contains("graduates.csv"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
