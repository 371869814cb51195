//! A seeded, time-bounded fuzz run against the real server: signed
//! hostile modifications and raw hostile requests (see `fuzz_cases`).
//!
//! It asserts what no input may break: no 5xx but the documented `503`
//! (and no `500` at all: the run's render deadline is out of reach, so a
//! `500` could only be a bug), `x-stencil-error` on every answer of 400 or
//! more, no raw control or bidi character in any error header or text
//! body, and a server that still answers normally afterwards.
//!
//! `SIGNET_FUZZ_SECS` (default 60) bounds the run; a shorter one still
//! runs [`MIN_CASES`]. `SIGNET_FUZZ_SEED` picks another sequence of
//! cases; a failure names the seed and the case to replay.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fuzz_cases::{self, Case, Rng};
use crate::helpers::*;
use crate::wire::{exchange, forbidden_in, Answer};

/// Cases run however short the budget.
const MIN_CASES: u64 = 40;
/// Clients sending at once.
const CLIENTS: u64 = 4;
const DEFAULT_SEED: u64 = 0x5167_e7f0_22ed;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}

/// What is wrong with one answer, if anything.
fn fault(answer: &Answer, case: &Case) -> Option<String> {
    let status = answer.status;
    if status >= 400 && answer.header("x-stencil-error").is_none() {
        return Some("an error without x-stencil-error".into());
    }
    if status >= 500 {
        // A broken `data:` image in a PDF once answered 500; images are
        // now decoded strictly first, so every 5xx but busy is a fault.
        let busy = status == 503 && answer.error() == "Server busy";
        if !busy {
            let pdf = if case.pdf_with_data_uri {
                " (a PDF with a data: image)"
            } else {
                ""
            };
            return Some(format!("status {status}{pdf}"));
        }
    }
    if status >= 400 {
        for (name, value) in &answer.headers {
            if let Some(c) = forbidden_in(value) {
                return Some(format!("raw {c:?} in header {name}"));
            }
        }
        let text = answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/"));
        if text {
            if let Some(c) = forbidden_in(&answer.text()) {
                return Some(format!("raw {c:?} in the body"));
            }
        }
    }
    None
}

/// The first bytes of a request, printable, for a failure message.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(600)]);
    signet::http::escape(&text)
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_mapped_escaped_errors_and_leave_the_server_alive() {
    let seconds = env_u64("SIGNET_FUZZ_SECS").unwrap_or(60);
    let seed = env_u64("SIGNET_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    // Out of reach, so that a 500 is never the deadline's.
    let app = Arc::new(spawn_with(|c| c.render_timeout_ms = 600_000).await);
    copy_dir(
        &repo().join("tests/reference/templates"),
        &app.templates.path().join(USER),
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (app, next, tally) = (Arc::clone(&app), Arc::clone(&next), Arc::clone(&tally));
            tokio::spawn(async move {
                loop {
                    let number = next.fetch_add(1, Ordering::SeqCst);
                    if number >= MIN_CASES && Instant::now() >= deadline {
                        return;
                    }
                    let mut rng = Rng::new(seed, number);
                    let case = if rng.chance(50) {
                        fuzz_cases::signed(&mut rng)
                    } else {
                        fuzz_cases::raw(&mut rng)
                    };
                    let answers = exchange(app.addr, &case.bytes).await;
                    let mut tally = tally.lock().unwrap();
                    for answer in &answers {
                        *tally.statuses.entry(answer.status).or_default() += 1;
                        if let Some(fault) = fault(answer, &case) {
                            tally.failures.push(format!(
                                "seed {seed:#x} case {number}: {fault}\n  sent: {}\n  got: {} {:?} {:?}",
                                shown(&case.bytes),
                                answer.status,
                                answer.headers,
                                shown(&answer.body),
                            ));
                        }
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("a client panicked");
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    eprintln!(
        "fuzz: seed {seed:#x}, {} cases in {seconds} s budget; statuses {:?}",
        next.load(Ordering::SeqCst),
        tally.statuses,
    );
    assert!(
        tally.failures.is_empty(),
        "{} failures, first ones:\n{}",
        tally.failures.len(),
        tally.failures[..tally.failures.len().min(5)].join("\n")
    );
    // Alive: a normal request is served as before.
    let response = app
        .get(&app.reference_url("layers", &[("title", "Ada")]))
        .await;
    assert_eq!(response.status(), 200, "{}", error_of(&response));
    assert_eq!(app.health().await["status"], "ok");
}
