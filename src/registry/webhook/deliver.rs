//! The delivery worker: one per process, started with the registry.
//!
//! Its loop wakes when this process appended events (`Webhooks::appended`),
//! when an attempt's outcome was written, or every `poll_ms`; it fans new
//! events out to their endpoints, then leases as many due deliveries as
//! it has free slots and sends each in a task of its own. Slots bound the
//! attempts in flight overall (`max_concurrency`) and per endpoint
//! (`max_concurrency_per_endpoint`), and every attempt ends within
//! `timeout_ms`, so a receiver that hangs holds its own few slots for that
//! long and never the others' nor the API's. Outcomes are written by one
//! task in batches (one transaction for many attempts); a delivery stays
//! leased until its outcome is written, so it is never taken again while
//! its attempt is still being recorded.
//!
//! The lease outlives the timeout by a margin; a process that dies
//! mid-attempt leaves its leases to be taken over once its heartbeat
//! stops (`store::GONE_AFTER_US`), and the resend carries the same
//! `webhook-id`. Delivery is therefore at least once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use tokio::sync::{mpsc, Notify, Semaphore};

use super::{guard, sign, EventBody, Webhooks};
use crate::registry::store::{now_us, Due, Outcome, Store};

/// Events fanned out by one transaction.
const FAN_OUT_BATCH: i64 = 500;
/// Outcomes written by one transaction.
const RECORD_BATCH: usize = 1000;
/// How long a lease outlasts the attempt's timeout.
const LEASE_MARGIN_US: i64 = 60_000_000;
/// Most bytes of a receiver's answer kept in the log.
const MAX_EXCERPT: usize = 1024;
/// The shortest time between two of the worker's rounds.
const MIN_ROUND_GAP: Duration = Duration::from_millis(5);
/// How long the worker waits after the database failed it.
const BACKOFF_ON_ERROR: Duration = Duration::from_millis(500);

/// Deliveries leased per endpoint, as a multiple of the attempts it may
/// have in flight: a backlog is claimed in batches (one transaction for
/// many deliveries) while the attempts themselves stay bounded.
const LEASED_PER_SLOT: usize = 4;

/// What this process holds: deliveries leased (waiting for a slot or in
/// flight) overall and per endpoint, and the slots themselves.
struct Slots {
    /// Attempts in flight at once, overall.
    sending: Arc<Semaphore>,
    per_endpoint_slots: usize,
    leased: Mutex<Leased>,
}

#[derive(Default)]
struct Leased {
    total: usize,
    /// Per endpoint: leased deliveries and the endpoint's own slots.
    by_endpoint: HashMap<String, (usize, Arc<Semaphore>)>,
}

impl Slots {
    fn new(total: usize, per_endpoint: usize) -> Slots {
        Slots {
            sending: Arc::new(Semaphore::new(total)),
            per_endpoint_slots: per_endpoint,
            leased: Mutex::default(),
        }
    }

    fn most_leased(&self) -> usize {
        self.per_endpoint_slots * LEASED_PER_SLOT
    }

    /// Records a lease for `endpoint`; answers its slots.
    fn lease(&self, endpoint: &str) -> Arc<Semaphore> {
        let slots = self.per_endpoint_slots;
        let mut leased = self.leased.lock().unwrap_or_else(|e| e.into_inner());
        leased.total += 1;
        let entry = leased
            .by_endpoint
            .entry(endpoint.to_owned())
            .or_insert_with(|| (0, Arc::new(Semaphore::new(slots))));
        entry.0 += 1;
        Arc::clone(&entry.1)
    }

    /// Ends a lease of `endpoint`; answers whether the worker should
    /// claim again now: the endpoint's leases fell to half their bound
    /// (so claims come in batches, not one per finished attempt), or
    /// this process's to half of theirs.
    fn release(&self, endpoint: &str, total_bound: usize) -> bool {
        let half = self.most_leased() / 2;
        let mut leased = self.leased.lock().unwrap_or_else(|e| e.into_inner());
        leased.total = leased.total.saturating_sub(1);
        let total_now = leased.total;
        let mut refill = total_now == total_bound / 2;
        if let Some(entry) = leased.by_endpoint.get_mut(endpoint) {
            entry.0 = entry.0.saturating_sub(1);
            refill |= entry.0 == half;
            if entry.0 == 0 {
                leased.by_endpoint.remove(endpoint);
            }
        }
        refill
    }

    /// Deliveries of `endpoint` that may be leased now: none while more
    /// than half its bound is leased, up to the bound otherwise.
    fn room(&self, endpoint: &str) -> usize {
        let leased = self.leased.lock().unwrap_or_else(|e| e.into_inner());
        let held = leased.by_endpoint.get(endpoint).map_or(0, |e| e.0);
        if held > self.most_leased() / 2 {
            0
        } else {
            self.most_leased() - held
        }
    }

    /// The endpoints with no room now.
    fn full(&self) -> Vec<String> {
        let leased = self.leased.lock().unwrap_or_else(|e| e.into_inner());
        let half = self.most_leased() / 2;
        leased
            .by_endpoint
            .iter()
            .filter(|(_, (held, _))| *held > half)
            .map(|(endpoint, _)| endpoint.clone())
            .collect()
    }

    fn total(&self) -> usize {
        self.leased.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// The client every attempt goes through: no redirects, no proxy, the
/// guarded resolver, the attempt's timeout.
fn client(hooks: &Webhooks) -> Result<reqwest::Client, reqwest::Error> {
    let timeout = Duration::from_millis(hooks.config.timeout_ms);
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(guard::GuardedResolver {
            allow_private: hooks.config.allow_private_networks,
        }))
        .pool_max_idle_per_host(hooks.config.max_concurrency_per_endpoint)
        .user_agent(concat!("Signet-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Starts the worker and its recorder; both end once `hooks` is dropped.
pub fn start(store: Store, hooks: &Arc<Webhooks>) {
    let client = match client(hooks) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhooks are not sent: no HTTP client");
            return;
        }
    };
    let (outcomes, receiver) = mpsc::channel(hooks.config.max_concurrency * 2);
    tokio::spawn(record(store.clone(), receiver, Arc::downgrade(hooks)));
    let worker = Worker {
        store,
        hooks: Arc::downgrade(hooks),
        client,
        slots: Arc::new(Slots::new(
            hooks.config.max_concurrency,
            hooks.config.max_concurrency_per_endpoint,
        )),
        freed: Arc::default(),
        outcomes,
    };
    tokio::spawn(worker.run());
}

struct Worker {
    store: Store,
    hooks: Weak<Webhooks>,
    client: reqwest::Client,
    slots: Arc<Slots>,
    /// Poked when an attempt ends and frees its slot.
    freed: Arc<Notify>,
    outcomes: mpsc::Sender<Outcome>,
}

impl Worker {
    async fn run(self) {
        let mut last = Instant::now();
        loop {
            // Pokes come as often as changes commit: rounds are spaced so
            // a flood of changes makes fewer, larger fan-outs rather than
            // a transaction per change beside the writers'.
            tokio::time::sleep(MIN_ROUND_GAP.saturating_sub(last.elapsed())).await;
            last = Instant::now();
            let Some(hooks) = self.hooks.upgrade() else {
                return;
            };
            let poll = Duration::from_millis(hooks.config.poll_ms);
            if let Err(error) = self.round(&hooks).await {
                tracing::warn!(%error, "webhook worker: the database failed a round");
                tokio::time::sleep(BACKOFF_ON_ERROR).await;
            }
            // `notify_one` keeps a poke made during the round for this wait.
            let appended = Arc::clone(&hooks.appended);
            drop(hooks);
            tokio::select! {
                () = appended.notified() => {}
                () = self.freed.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Fans out what is new, then fills the free slots.
    async fn round(&self, hooks: &Arc<Webhooks>) -> Result<(), crate::registry::RegistryError> {
        while self.store.fan_out(FAN_OUT_BATCH, now_us()).await? == FAN_OUT_BATCH as usize {}
        let config = &hooks.config;
        // Leases overall: the slots, each with a few waiting behind it.
        let total_bound = config.max_concurrency * 2;
        let free = total_bound.saturating_sub(self.slots.total());
        if free == 0 {
            return Ok(());
        }
        let now = now_us();
        let timeout_us = i64::try_from(config.timeout_ms.saturating_mul(1000)).unwrap_or(i64::MAX);
        // The last of an endpoint's leases may wait for the ones before
        // it to time out: its lease covers that wait and its own attempt.
        let waits = i64::try_from(LEASED_PER_SLOT + 1).unwrap_or(i64::MAX);
        let lease_until = now + timeout_us.saturating_mul(waits) + LEASE_MARGIN_US;
        let slots = Arc::clone(&self.slots);
        let room = move |endpoint: &str| slots.room(endpoint);
        let full = self.slots.full();
        let due = self
            .store
            .claim_due(now, free, lease_until, &room, &full)
            .await?;
        for due in due {
            let endpoint_slots = self.slots.lease(&due.endpoint_id);
            let attempt = Attempt {
                client: self.client.clone(),
                allow_private: config.allow_private_networks,
                retry: config.clone(),
            };
            let outcomes = self.outcomes.clone();
            let (slots, freed) = (Arc::clone(&self.slots), Arc::clone(&self.freed));
            tokio::spawn(async move {
                let endpoint = due.endpoint_id.clone();
                // The endpoint's slot first, so a slow endpoint's backlog
                // waits on its own slots and never takes the shared ones.
                let outcome = match endpoint_slots.acquire().await {
                    Ok(_mine) => match slots.sending.acquire().await {
                        Ok(_shared) => Some(attempt.send(due).await),
                        Err(_) => None,
                    },
                    Err(_) => None,
                };
                // Queued (a full queue waits for the recorder), the lease
                // is given up here at once: the database's lease keeps the
                // delivery from being taken again until its outcome is
                // written. A gone recorder means a gone registry.
                if let Some(outcome) = outcome {
                    let _ = outcomes.send(outcome).await;
                }
                if slots.release(&endpoint, total_bound) {
                    freed.notify_one();
                }
            });
        }
        Ok(())
    }
}

/// What one attempt needs besides its delivery.
struct Attempt {
    client: reqwest::Client,
    allow_private: bool,
    retry: super::WebhookConfig,
}

impl Attempt {
    async fn send(&self, due: Due) -> Outcome {
        let at = now_us();
        let started = Instant::now();
        let result = self.post(&due).await;
        let duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        let attempt = due.attempts + 1;
        let (succeeded, response_status, error, excerpt) = match result {
            Ok((status, excerpt)) => {
                let ok = (200..300).contains(&status);
                let error = (!ok).then(|| format!("the receiver answered {status}"));
                (ok, Some(status), error, Some(excerpt))
            }
            Err(why) => (false, None, Some(why), None),
        };
        let retry_at = if succeeded {
            None
        } else {
            let failed = u64::try_from(attempt).unwrap_or(u64::MAX);
            self.retry.retry_delay_us(failed).map(|d| now_us() + d)
        };
        Outcome {
            delivery_id: due.delivery_id,
            endpoint_id: due.endpoint_id,
            account_id: due.event.account_id,
            livemode: due.event.livemode,
            event_id: due.event.id,
            event_type: due.event.kind,
            attempt,
            succeeded,
            response_status,
            error,
            excerpt,
            at,
            duration_us,
            retry_at,
        }
    }

    /// Sends `due` once: the receiver's status and the start of its
    /// answer, or why none came.
    async fn post(&self, due: &Due) -> Result<(u16, String), String> {
        let url = guard::check_url(&due.url, due.event.livemode, self.allow_private)
            .map_err(|refused| refused.0)?;
        let key = sign::key_of(&due.secret).ok_or("the endpoint's secret is damaged")?;
        let body = EventBody::of(&due.event).to_bytes();
        let timestamp = now_us().div_euclid(1_000_000);
        let signature = sign::signature(&key, &due.event.id, timestamp, &body);
        let header = |text: &str| HeaderValue::from_str(text).map_err(|e| e.to_string());
        let request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", header(&due.event.id)?)
            .header("webhook-timestamp", HeaderValue::from(timestamp))
            .header("webhook-signature", header(&signature)?)
            .body(body);
        let mut response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let mut excerpt = Vec::new();
        while excerpt.len() < MAX_EXCERPT {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                Ok(None) => break,
                // A 2xx whose body did not come in time still timed out.
                Err(error) => return Err(describe(&error)),
            }
        }
        excerpt.truncate(MAX_EXCERPT);
        Ok((status, String::from_utf8_lossy(&excerpt).into_owned()))
    }
}

/// Why a request failed, in words, without its URL (which may hold the
/// receiver's own token).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out: no complete answer within the timeout".into();
    }
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

/// Writes outcomes in batches. A batch the database refuses is tried
/// again; the leases stand meanwhile, so nothing is sent twice by this
/// process.
async fn record(store: Store, mut receiver: mpsc::Receiver<Outcome>, hooks: Weak<Webhooks>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while receiver.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let Some(disable_after) = hooks.upgrade().map(|h| h.config.disable_after_ms) else {
            return;
        };
        let disable_us = i64::try_from(disable_after.saturating_mul(1000)).unwrap_or(i64::MAX);
        for tries in 1.. {
            let now = now_us();
            match store
                .record_outcomes(&batch, now, now.saturating_sub(disable_us))
                .await
            {
                Ok(disabled) => {
                    for endpoint in disabled {
                        tracing::warn!(endpoint = %endpoint, "webhook endpoint disabled: failing");
                    }
                    break;
                }
                Err(error) if tries < 20 => {
                    tracing::warn!(%error, "could not record webhook attempts; trying again");
                    tokio::time::sleep(BACKOFF_ON_ERROR).await;
                }
                Err(error) => {
                    // The leases run out and the deliveries are sent again.
                    tracing::error!(%error, "webhook attempts not recorded");
                    break;
                }
            }
        }
        batch.clear();
    }
}
