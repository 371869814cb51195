//! CSV batches over HTTP: the contract's format (header row, BOM, RFC
//! 4180 quoting, `metadata.` columns, up to 10 MiB) and every way a file
//! goes wrong — each refused whole with the row named when the file
//! cannot be trusted, or failing only its row when the rest can. Each
//! test runs on SQLite and on PostgreSQL.

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{CERT, USER};
use crate::on_both_databases;
use crate::registry_batches::{finished, roomy};
use crate::registry_certificates::issue;
use crate::registry_certificates::maria;
use crate::registry_helpers::{
    expect_error, json_of, spawn_registry_with_templates_and, Db, RegistryApp,
};

/// Posts `csv` as `text/csv` to `path`.
async fn post_csv(
    app: &RegistryApp,
    path: &str,
    key: &str,
    csv: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(key)
        .header("content-type", "text/csv; charset=utf-8")
        .body(csv)
        .send()
        .await
        .unwrap()
}

fn issuing() -> String {
    format!("/certificates/batch?template_id={CERT}")
}

async fn a_spreadsheets_csv_issues_one_certificate_per_row(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let csv = "\u{feff}name,email,course_name,metadata.crm\r\n\
               \"Svensson, Anna\",anna@example.org,\"Welding \"\"Advanced\"\"\",003XX1\r\n\
               \r\n\
               Bo Ek,,Carpentry,\r\n\
               ,,,\r\n\
               Jörg Müller,jorg@example.org,Ölhandel,003XX2";
    let response = post_csv(&app, &issuing(), &key, csv).await;
    let (status, batch) = json_of(response).await;
    assert_eq!(status, 202, "{batch}");
    assert_eq!(batch["total"], 3);
    let done = finished(&app, &key, batch["id"].as_str().unwrap(), "").await;
    assert_eq!(
        (&done["completed"], &done["failed"]),
        (&json!(3), &json!(0))
    );
    let rows: Vec<i64> = done["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["row"].as_i64().unwrap())
        .collect();
    // Blank rows are skipped but keep their place: rows are the file's.
    assert_eq!(rows, [1, 3, 5]);
    let cert = |n: usize| {
        done["items"][n]["certificate_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (_, anna) = json_of(app.get(&format!("/certificates/{}", cert(0)), &key).await).await;
    assert_eq!(
        anna["recipient"],
        json!({"name": "Svensson, Anna", "email": "anna@example.org"})
    );
    assert_eq!(
        anna["fields"],
        json!({"course_name": "Welding \"Advanced\""})
    );
    assert_eq!(anna["metadata"], json!({"crm": "003XX1"}));
    let (_, bo) = json_of(app.get(&format!("/certificates/{}", cert(1)), &key).await).await;
    assert_eq!(
        (&bo["recipient"]["email"], &bo["metadata"]),
        (&Value::Null, &json!({}))
    );
    let (_, jorg) = json_of(app.get(&format!("/certificates/{}", cert(2)), &key).await).await;
    assert_eq!(jorg["recipient"]["name"], "Jörg Müller");
}
on_both_databases!(
    a_spreadsheets_csv_issues_one_certificate_per_row,
    super::a_spreadsheets_csv_issues_one_certificate_per_row
);

async fn a_bad_row_among_good_ones_fails_alone_with_its_row_number(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let csv = "name,email,course_name\n\
               Anna,anna@example.org,Welding\n\
               Bo,not-an-address,Welding\n\
               Cy \"the\" Third,cy@example.org,Welding\n\
               Dee,dee@example.org,Welding,extra\n\
               Eve,eve@example.org\n\
               Fay,fay@example.org,Welding\n";
    let (status, batch) = json_of(post_csv(&app, &issuing(), &key, csv).await).await;
    assert_eq!(status, 202, "{batch}");
    // Rows that could not be read fail at once, before any work.
    assert_eq!(batch["failed"], 3);
    assert_eq!(batch["items"][2]["status"], "failed");
    let done = finished(&app, &key, batch["id"].as_str().unwrap(), "").await;
    let items = done["items"].as_array().unwrap();
    let outcome: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["status"].as_str().unwrap(),
                i["error"]["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        [
            ("completed", ""),
            ("failed", "invalid_field"),
            ("failed", "invalid_request"),
            ("failed", "invalid_request"),
            ("failed", "invalid_request"),
            ("completed", ""),
        ]
    );
    assert_eq!(items[1]["error"]["param"], "recipient.email");
    for (n, what) in [(2, "quote"), (3, "4 values"), (4, "2 values")] {
        let message = items[n]["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("Row {}", n + 1)) && message.contains(what),
            "{message}"
        );
    }
}
on_both_databases!(
    a_bad_row_among_good_ones_fails_alone_with_its_row_number,
    super::a_bad_row_among_good_ones_fails_alone_with_its_row_number
);

/// The error a CSV body is refused with, checked to be `status`/`code`.
async fn refused(
    app: &RegistryApp,
    key: &str,
    csv: impl Into<reqwest::Body>,
    status: u16,
    code: &str,
) -> Value {
    expect_error(post_csv(app, &issuing(), key, csv).await, status, code).await
}

async fn a_file_that_cannot_be_trusted_is_refused_whole(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    // A data row where the header should be.
    let error = refused(
        &app,
        &key,
        "Anna Svensson,anna@example.org,Welding\n",
        400,
        "invalid_request",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("`name` column"),
        "{error}"
    );
    // A column the template lacks; a required field without a column.
    let error = refused(
        &app,
        &key,
        "name,course_name,colour\nA,B,red\n",
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(error["param"], "colour");
    assert!(
        error["message"].as_str().unwrap().contains("course_name"),
        "{error}"
    );
    let error = refused(
        &app,
        &key,
        "name,email\nA,a@example.org\n",
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(error["param"], "course_name");
    // A quote that never closes would swallow every row after it.
    let lone = "name,course_name\nAnna,Welding\n\"Bo,Welding\nCy,Welding\n";
    let error = refused(&app, &key, lone, 400, "invalid_request").await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Row 2 (line 3)") && message.contains("never closes"),
        "{message}"
    );
    // Latin-1 from an old spreadsheet.
    let latin1: &[u8] = b"name,course_name\nAnna,Welding\nJ\xf6rg,Welding\n";
    let error = refused(&app, &key, latin1.to_vec(), 400, "invalid_request").await;
    assert!(
        error["message"].as_str().unwrap().contains("line 3"),
        "{error}"
    );
    // Nothing under the header; nothing at all.
    refused(&app, &key, "name,course_name\n", 400, "invalid_request").await;
    refused(&app, &key, "", 400, "invalid_request").await;
    // No template named.
    let error = expect_error(
        post_csv(&app, "/certificates/batch", &key, "name\nA\n").await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(error["param"], "template_id");
    let error = expect_error(
        post_csv(
            &app,
            "/certificates/batch?template_id=nope",
            &key,
            "name\nA\n",
        )
        .await,
        400,
        "invalid_template",
    )
    .await;
    assert_eq!(error["param"], "template_id");
    // Another type of body.
    let response = app
        .client
        .post(app.url(&issuing()))
        .bearer_auth(&key)
        .header("content-type", "application/vnd.ms-excel")
        .body("name\nA\n")
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
    let (_, list) = json_of(app.get("/certificates", &key).await).await;
    assert_eq!(list["data"], json!([]), "nothing was issued");
}
on_both_databases!(
    a_file_that_cannot_be_trusted_is_refused_whole,
    super::a_file_that_cannot_be_trusted_is_refused_whole
);

async fn too_many_rows_or_bytes_are_refused_before_any_work(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    // 100,001 rows: over what any batch holds, whatever the plan.
    let rows = format!("name,course_name\n{}", "A,B\n".repeat(100_001));
    let error = refused(&app, &key, rows, 422, "batch_too_large").await;
    assert!(
        error["message"].as_str().unwrap().contains("100000"),
        "{error}"
    );
    // Over 10 MiB.
    let big = format!(
        "name,course_name\n{}",
        format!("{},B\n", "A".repeat(1000)).repeat(10_800)
    );
    assert!(big.len() > 10 * 1024 * 1024);
    refused(&app, &key, big, 413, "payload_too_large").await;
    // A JSON batch stays bound to 1 MiB.
    let long = json!({"template_id": CERT, "recipients": [{"name": "x".repeat(1_100_000)}]});
    expect_error(
        app.post_json("/certificates/batch", &key, &long).await,
        413,
        "payload_too_large",
    )
    .await;
}
on_both_databases!(
    too_many_rows_or_bytes_are_refused_before_any_work,
    super::too_many_rows_or_bytes_are_refused_before_any_work
);

async fn a_csv_of_ids_revokes_them_with_the_reason_given(db: Db) {
    let app = spawn_registry_with_templates_and(db, roomy).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let a = issue(&app, &key, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = issue(&app, &key, &maria()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let csv = format!("certificate_id\r\n{a}\r\n{b}\r\n");
    let response = post_csv(
        &app,
        "/certificates/batch_revoke?reason=Issued+by+mistake",
        &key,
        csv,
    )
    .await;
    let (status, batch) = json_of(response).await;
    assert_eq!(status, 202, "{batch}");
    let done = finished(&app, &key, batch["id"].as_str().unwrap(), "").await;
    assert_eq!(done["completed"], 2);
    for id in [&a, &b] {
        let (_, cert) = json_of(app.get(&format!("/certificates/{id}"), &key).await).await;
        assert_eq!(
            (&cert["status"], &cert["revocation_reason"]),
            (&json!("revoked"), &json!("Issued by mistake"))
        );
    }
    let twice = format!("certificate_id\n{a}\n{a}\n");
    expect_error(
        post_csv(&app, "/certificates/batch_revoke", &key, twice).await,
        400,
        "invalid_request",
    )
    .await;
    let wrong = format!("id,reason\n{a},x\n");
    expect_error(
        post_csv(&app, "/certificates/batch_revoke", &key, wrong).await,
        400,
        "invalid_request",
    )
    .await;
}
on_both_databases!(
    a_csv_of_ids_revokes_them_with_the_reason_given,
    super::a_csv_of_ids_revokes_them_with_the_reason_given
);
