//! A certificate's images at `/c/{id}.…`, drawn from its record: the
//! same pixels a signed URL with the record's text gives, in every
//! format and as the 1200×630 social card; a stamp as soon as it does
//! not stand (suspended, revoked, expired) or comes from the sandbox, on
//! the process that changed it at once and on another process sharing the
//! database soon after; the clean image again when a suspension is
//! lifted; a correction redrawn. Each test runs on SQLite and on
//! PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use signet::registry::Environment;

use crate::helpers::{decode_png, require_program, CERT, SECRET, USER};
use crate::on_both_databases;
use crate::registry_certificates::{issue, maria};
use crate::registry_helpers::{
    json_of, spawn_beside, spawn_registry_with_templates, Db, RegistryApp,
};

/// The server's root (without `/v1`).
fn root(app: &RegistryApp) -> String {
    app.base.trim_end_matches("/v1").to_owned()
}

/// `GET` of a certificate image path (`.png`, `/social.png`, …):
/// status, headers and body.
async fn image(
    app: &RegistryApp,
    id: &str,
    suffix: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = app
        .client
        .get(format!("{}/c/{id}{suffix}", root(app)))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn etag(headers: &reqwest::header::HeaderMap) -> String {
    headers["etag"].to_str().unwrap().to_owned()
}

/// The share of pixels that differ between two PNGs of one size.
fn changed_share(a: &[u8], b: &[u8]) -> f64 {
    let (a, b) = (decode_png(a), decode_png(b));
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    let differ = a
        .pixels()
        .iter()
        .zip(b.pixels())
        .filter(|(p, q)| p != q)
        .count();
    differ as f64 / a.pixels().len() as f64
}

/// The id of a newly issued certificate of `body`.
async fn issued(app: &RegistryApp, key: &str, body: &Value) -> String {
    issue(app, key, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn the_images_are_the_records_text_drawn_as_a_signed_url_draws_it(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let cert = issue(&app, &key, &maria()).await;
    let id = cert["id"].as_str().unwrap();
    let (status, headers, png) = image(&app, id, ".png").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["cache-control"], "public, no-cache");
    // The image URL the object gives is this one.
    assert!(cert["image_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/c/{id}.png")));

    // The oracle: the signed URL the customer's own code would write for
    // the same text, served by the image path.
    let mods = json!([
        {"name": "text_candidate", "text": "Maria Andersson"},
        {"name": "text_course", "text": "Advanced Project Management"},
    ]);
    let url = signet::signing::signed_url_with_options(
        &root(&app),
        USER,
        CERT,
        "png",
        &mods.to_string(),
        &[],
        SECRET,
    );
    let signed = app.client.get(url).send().await.unwrap();
    assert_eq!(signed.status(), 200);
    let signed = signed.bytes().await.unwrap();
    assert_eq!(changed_share(&png, &signed), 0.0, "the same pixels");

    // Revalidation answers 304 from the ETag, without a body.
    let again = app
        .client
        .get(format!("{}/c/{id}.png", root(&app)))
        .header("if-none-match", etag(&headers))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    for (suffix, magic, kind) in [
        (".pdf", b"%PDF-".as_slice(), "application/pdf"),
        (".jpg", b"\xff\xd8\xff".as_slice(), "image/jpeg"),
        (".webp", b"RIFF".as_slice(), "image/webp"),
    ] {
        let (status, headers, body) = image(&app, id, suffix).await;
        assert_eq!(
            (status, headers["content-type"].to_str().unwrap()),
            (200, kind)
        );
        assert!(body.starts_with(magic), "{suffix}");
    }
    let (status, _, card) = image(&app, id, "/social.png").await;
    assert_eq!(status, 200);
    let card = decode_png(&card);
    assert_eq!((card.width(), card.height()), (1200, 630));
}
on_both_databases!(
    the_images_are_the_records_text_drawn_as_a_signed_url_draws_it,
    super::the_images_are_the_records_text_drawn_as_a_signed_url_draws_it
);

/// Fetches `/c/{id}.png` from `app` until its ETag is not `old`, for at
/// most `bound`; answers the new ETag, the body and how long it took.
async fn until_changed(
    app: &RegistryApp,
    id: &str,
    old: &str,
    bound: Duration,
) -> (String, Vec<u8>, Duration) {
    let started = Instant::now();
    loop {
        let (status, headers, body) = image(app, id, ".png").await;
        assert_eq!(status, 200);
        if etag(&headers) != old {
            return (etag(&headers), body, started.elapsed());
        }
        assert!(
            started.elapsed() < bound,
            "the image of {id} still showed its old state after {bound:?}"
        );
        tokio::task::yield_now().await;
    }
}

async fn a_status_change_stamps_the_image_on_every_process(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let other = spawn_beside(&app).await;
    let (_, key) = app.key(USER, Environment::Live, &["*"]).await;
    let id = issued(&app, &key, &maria()).await;
    let (_, clean_headers, clean) = image(&app, &id, ".png").await;
    let clean_tag = etag(&clean_headers);
    // The other process has the clean image cached too.
    let (_, there, _) = image(&other, &id, ".png").await;
    assert_eq!(etag(&there), clean_tag);

    let path = format!("/certificates/{id}");
    let (code, _) = json_of(
        app.patch_json(&path, &key, &json!({"status": "suspended"}))
            .await,
    )
    .await;
    assert_eq!(code, 200);
    // The process that made the change shows it at once.
    let (_, headers, suspended) = image(&app, &id, ".png").await;
    assert_ne!(
        etag(&headers),
        clean_tag,
        "the clean image served after a suspension"
    );
    let share = changed_share(&clean, &suspended);
    assert!(
        share > 0.3,
        "the stamp and the wash change most pixels: {share}"
    );
    // The other one within its bound on staleness (half a second); the
    // poll's bound is generous, for a loaded machine.
    let (tag, _, took) = until_changed(&other, &id, &clean_tag, Duration::from_secs(10)).await;
    assert_eq!(tag, etag(&headers));
    eprintln!("the other process showed the suspension after {took:?}");

    // Lifted: the clean image again, the same bytes' tag.
    json_of(
        app.patch_json(&path, &key, &json!({"status": "issued"}))
            .await,
    )
    .await;
    let (_, headers, _) = image(&app, &id, ".png").await;
    assert_eq!(etag(&headers), clean_tag);

    // Revoked: stamped for good, in the PDF as text too.
    let (code, _) = json_of(
        app.post_json(&format!("{path}/revoke"), &key, &json!({}))
            .await,
    )
    .await;
    assert_eq!(code, 200);
    let (_, headers, revoked) = image(&app, &id, ".png").await;
    assert_ne!(etag(&headers), clean_tag);
    assert!(changed_share(&clean, &revoked) > 0.3);
    until_changed(&other, &id, &clean_tag, Duration::from_secs(10)).await;
    let (_, _, pdf) = image(&app, &id, ".pdf").await;
    let text = pdf_text(&pdf);
    assert!(text.contains("REVOKED"), "{text}");
    assert!(text.contains("Maria Andersson"), "{text}");
}
on_both_databases!(
    a_status_change_stamps_the_image_on_every_process,
    super::a_status_change_stamps_the_image_on_every_process
);

/// The text poppler reads from a PDF, in the order it is drawn (the
/// stamp is set at an angle, which the layout mode reads letter by
/// letter).
fn pdf_text(pdf: &[u8]) -> String {
    require_program("pdftotext", "poppler-utils");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-raw")
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

async fn sandbox_and_expired_certificates_are_stamped_and_corrections_redrawn(db: Db) {
    let app = spawn_registry_with_templates(db).await;
    let (_, live) = app.key(USER, Environment::Live, &["*"]).await;
    let (_, test) = app.key(USER, Environment::Test, &["*"]).await;
    let live_id = issued(&app, &live, &maria()).await;
    let test_id = issued(&app, &test, &maria()).await;
    let (_, _, clean) = image(&app, &live_id, ".png").await;
    let (_, _, specimen) = image(&app, &test_id, ".png").await;
    let share = changed_share(&clean, &specimen);
    assert!(share > 0.01, "a SPECIMEN stamp: {share}");
    let (_, _, pdf) = image(&app, &test_id, ".pdf").await;
    let text = pdf_text(&pdf);
    assert!(text.contains("SPECIMEN"), "{text}");

    // A corrected name is redrawn.
    let (_, before, _) = image(&app, &live_id, ".png").await;
    let path = format!("/certificates/{live_id}");
    let (code, _) = json_of(
        app.patch_json(
            &path,
            &live,
            &json!({"recipient": {"name": "Maria Anderson-Berg"}}),
        )
        .await,
    )
    .await;
    assert_eq!(code, 200);
    let (_, after, _) = image(&app, &live_id, ".png").await;
    assert_ne!(etag(&before), etag(&after));
    let (_, _, pdf) = image(&app, &live_id, ".pdf").await;
    assert!(pdf_text(&pdf).contains("Maria Anderson-Berg"));

    // Expiry shows without any change being made.
    let mut soon = maria();
    soon["expires_at"] = json!(signet::registry::rfc3339(
        signet::registry::store::now_us() + 2_000_000
    ));
    let expiring = issued(&app, &live, &soon).await;
    let (_, headers, _) = image(&app, &expiring, ".png").await;
    let (_, expired, _) =
        until_changed(&app, &expiring, &etag(&headers), Duration::from_secs(15)).await;
    let (_, _, pdf) = image(&app, &expiring, ".pdf").await;
    assert!(pdf_text(&pdf).contains("EXPIRED"));
    assert!(changed_share(&clean, &expired) > 0.3);
}
on_both_databases!(
    sandbox_and_expired_certificates_are_stamped_and_corrections_redrawn,
    super::sandbox_and_expired_certificates_are_stamped_and_corrections_redrawn
);

#[tokio::test]
async fn unknown_and_malformed_certificate_paths_are_not_found() {
    let app = spawn_registry_with_templates(Db::Sqlite).await;
    for path in [
        "/c/cert_0000000000000000000000.png",
        "/c/cert_.png",
        "/c/not-a-cert.png",
        "/c/cert_abc.gif",
        "/c/cert_abc/social.jpg",
        "/c/cert_abc/../x.png",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", root(&app)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            crate::helpers::error_of(&response),
            "Unknown certificate",
            "{path}"
        );
    }
    let response = app
        .client
        .post(format!("{}/c/cert_abc.png", root(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn without_a_registry_no_certificate_exists() {
    let app = crate::helpers::spawn_app().await;
    let response = app.get(&format!("{}/c/cert_abc.png", app.base_url())).await;
    assert_eq!(response.status(), 404);
    assert_eq!(crate::helpers::error_of(&response), "Unknown certificate");
}
