//! PostgreSQL stopped under a storm of creates: while it is gone every
//! request is answered, soon, `503 unavailable` with `Retry-After` —
//! never a `500`, a cut connection or a hang — and once it is back the
//! server serves again by itself, with no restart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::registry_cluster::OwnCluster;
use crate::registry_process::{Server, ServerSetup};
use crate::registry_storm::{client, send, Answer, Create, CLIENTS};

/// Certificates made before PostgreSQL is stopped.
const STOP_AFTER: usize = 64;
/// `503`s each client sees before PostgreSQL is started again.
const REFUSALS_EACH: usize = 2;
/// How soon every answer must come, generously: the pool gives up on a
/// refused connection after two seconds, and a request waits for a
/// connection a few times over (key, rate limit, transaction). A hang
/// runs into the clients' own timeout, well past this.
const ANSWER_BOUND: Duration = Duration::from_secs(8);
/// How long each phase (the storm's start, the outage reaching every
/// client, service coming back) may take.
const PHASE_BOUND: Duration = Duration::from_secs(30);
/// Most requests one client sends: a bound, never reached.
const MAX_PER_CLIENT: usize = 2_000;
/// How long a client waits before asking again once PostgreSQL is back
/// but the create was refused: a polling interval.
const POLL: Duration = Duration::from_millis(50);

/// Where the outage stands, as the clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Up,
    Stopping,
    Back,
}

/// What one client saw: each answer with the phase it was sent in and
/// how long it took; whether its last create, after the outage, worked.
struct Seen {
    answers: Vec<(Phase, Answer, Duration)>,
    resumed: bool,
}

/// Fails the test on a phase that did not end in time, with the log.
fn late<T>(what: &str, server: &Server) -> T {
    panic!("{what} within {PHASE_BOUND:?}:\n{}", server.log())
}

#[tokio::test]
async fn postgresql_stopped_mid_storm_is_a_quick_503_and_service_resumes_by_itself() {
    let cluster = OwnCluster::start();
    let database_url = cluster.database();
    let setup = ServerSetup::new(Some(&database_url));
    let key = setup.create_key(&["*"]);
    let mut server = setup.start("info", &[]);
    let run = signet::registry::ids::new_id("outage_").unwrap();
    let url = server.url("/certificates");

    let (phase_tx, phase_rx) = watch::channel(Phase::Up);
    let created = Arc::new(AtomicUsize::new(0));
    let refused_enough = Arc::new(AtomicUsize::new(0));
    let wake = Arc::new(Notify::new());
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (created, refused_enough, wake) = (
            Arc::clone(&created),
            Arc::clone(&refused_enough),
            Arc::clone(&wake),
        );
        let mut phase = phase_rx.clone();
        let (url, key, run) = (url.clone(), key.clone(), run.clone());
        clients.push(tokio::spawn(async move {
            let http = client();
            let mut seen = Seen {
                answers: Vec::new(),
                resumed: false,
            };
            let mut refusals = 0;
            for n in 0..MAX_PER_CLIENT {
                let sent_in = *phase.borrow();
                let (answer, took) = send(&http, &url, &key, &Create::new(&run, c, n)).await;
                let ok = matches!(answer, Answer::Created { .. });
                let lost = matches!(answer, Answer::Lost(_));
                seen.answers.push((sent_in, answer, took));
                if lost {
                    break;
                }
                match sent_in {
                    Phase::Up if ok => {
                        if created.fetch_add(1, Ordering::SeqCst) + 1 == STOP_AFTER {
                            wake.notify_one();
                        }
                    }
                    Phase::Up => {}
                    Phase::Stopping if !ok => {
                        refusals += 1;
                        if refusals == REFUSALS_EACH {
                            if refused_enough.fetch_add(1, Ordering::SeqCst) + 1 == CLIENTS {
                                wake.notify_one();
                            }
                            // Hold off until PostgreSQL is back: the
                            // outage has been seen, no need to hammer.
                            let _ = phase.wait_for(|p| *p == Phase::Back).await;
                        }
                    }
                    Phase::Stopping => {}
                    Phase::Back if ok => {
                        seen.resumed = true;
                        break;
                    }
                    Phase::Back => tokio::time::sleep(POLL).await,
                }
            }
            seen
        }));
    }

    tokio::time::timeout(PHASE_BOUND, wake.notified())
        .await
        .unwrap_or_else(|_| late("the storm's first certificates", &server));
    phase_tx.send_replace(Phase::Stopping);
    // pg_ctl blocks: off the runtime the clients run on.
    let cluster = Arc::new(cluster);
    let stop = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || stop.stop())
        .await
        .unwrap();
    tokio::time::timeout(PHASE_BOUND, wake.notified())
        .await
        .unwrap_or_else(|_| late("503s for every client", &server));
    let resume = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || resume.resume())
        .await
        .unwrap();
    phase_tx.send_replace(Phase::Back);
    let mut seen = Vec::new();
    for handle in clients {
        let client = tokio::time::timeout(PHASE_BOUND, handle)
            .await
            .unwrap_or_else(|_| late("service back for every client", &server))
            .unwrap();
        seen.push(client);
    }
    let log = server.kill();

    // Every answer is tallied, so a failure names all that went wrong.
    let mut refused = 0;
    let mut slowest = Duration::ZERO;
    let mut wrong: BTreeMap<String, usize> = BTreeMap::new();
    for (c, client) in seen.iter().enumerate() {
        if !client.resumed {
            *wrong
                .entry(format!("client {c} never created again"))
                .or_default() += 1;
        }
        for (phase, answer, took) in &client.answers {
            slowest = slowest.max(*took);
            if *took >= ANSWER_BOUND {
                *wrong
                    .entry(format!("{phase:?}: answers slower than {ANSWER_BOUND:?}"))
                    .or_default() += 1;
            }
            match answer {
                Answer::Created { .. } => {}
                Answer::Refused {
                    status: 503,
                    code: Some(code),
                    retry_after: Some(_),
                } if code == "unavailable" => refused += 1,
                other => *wrong.entry(format!("{phase:?}: {other:?}")).or_default() += 1,
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}, slowest {slowest:?}\n{log}");
    assert!(refused >= CLIENTS * REFUSALS_EACH, "{refused}");
}
