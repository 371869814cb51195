//! `certificate.viewed` and `certificate.verified` from the public side,
//! counted without flooding: at most one event per visitor (client
//! address and user agent), certificate and kind an hour, remembered in
//! memory within a bound; crawlers that fetch a link's preview
//! (LinkedIn's, Slack's…) are named in the event's `data`.
//!
//! The image path must stay fast, so [`Views::count`] is an in-memory
//! check and a hand-off to a bounded queue; the task of [`append`] writes
//! the queued events to the outbox in batches, off every request's path.
//! An event still queued when the process dies is lost, and a full queue
//! drops new ones: these are counts of views, not changes of a record.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::WebhookConfig;
use crate::registry::store::{now_us, NewEvent, Store};

/// How long a visitor's view of a certificate counts once.
const THROTTLE: Duration = Duration::from_secs(3600);
/// Most (visitor, certificate) pairs remembered; past it the oldest go,
/// and a forgotten pair may count again within its hour.
const MAX_REMEMBERED: u64 = 200_000;
/// Events waiting to be written; past it new ones are dropped.
const MAX_QUEUED: usize = 10_000;
/// Events written in one transaction.
const BATCH: usize = 500;
/// Longest place or referrer host kept.
const MAX_TEXT: usize = 100;

/// User agents of link-preview crawlers and search bots, and the name
/// `data.crawler` gives each.
const CRAWLERS: &[(&str, &str)] = &[
    ("linkedinbot", "linkedin"),
    ("slackbot", "slack"),
    ("slack-imgproxy", "slack"),
    ("twitterbot", "twitter"),
    ("facebookexternalhit", "facebook"),
    ("facebot", "facebook"),
    ("discordbot", "discord"),
    ("whatsapp", "whatsapp"),
    ("telegrambot", "telegram"),
    ("googlebot", "google"),
    ("bingbot", "bing"),
    ("applebot", "apple"),
    ("skypeuripreview", "skype"),
    ("pinterest", "pinterest"),
    ("redditbot", "reddit"),
];

/// An event of the public side, queued to be appended.
#[derive(Debug)]
pub struct Public {
    account_id: String,
    livemode: bool,
    kind: &'static str,
    certificate_id: String,
    data: Value,
    at: i64,
}

/// The queue's far end, for [`append`].
pub type Receiver = mpsc::Receiver<Public>;

/// The throttle and the queue.
pub struct Views {
    /// Hashes of (kind, certificate, visitor) counted within the hour.
    seen: moka::sync::Cache<[u8; 16], ()>,
    queue: mpsc::Sender<Public>,
    country_header: Option<String>,
    city_header: Option<String>,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Views")
    }
}

/// The certificate a visitor saw.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub certificate_id: &'a str,
    pub account_id: &'a str,
    pub livemode: bool,
}

impl Views {
    pub fn new(config: &WebhookConfig) -> (Views, Receiver) {
        let (queue, receiver) = mpsc::channel(MAX_QUEUED);
        let views = Views {
            seen: moka::sync::Cache::builder()
                .max_capacity(MAX_REMEMBERED)
                .time_to_live(THROTTLE)
                .build(),
            queue,
            country_header: config.country_header.clone(),
            city_header: config.city_header.clone(),
        };
        (views, receiver)
    }

    /// Counts a `kind` event (`certificate.viewed`, `.verified`) of the
    /// visitor at `client` with `headers`, unless the visitor was counted
    /// for this certificate within the hour. `extra` goes into `data`.
    /// Answers whether an event was queued.
    pub fn count(
        &self,
        kind: &'static str,
        seen: Seen<'_>,
        client: Option<IpAddr>,
        headers: &HeaderMap,
        extra: &[(&str, &str)],
    ) -> bool {
        let agent = headers
            .get(header::USER_AGENT)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let mut hash = Sha256::new();
        for part in [kind.as_bytes(), seen.certificate_id.as_bytes()] {
            hash.update(part);
            hash.update([0]);
        }
        hash.update(client.map(|ip| ip.to_string()).unwrap_or_default());
        hash.update([0]);
        hash.update(agent);
        let digest = hash.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        if !self.seen.entry(key).or_insert(()).is_fresh() {
            return false;
        }
        let mut data = Map::new();
        data.insert("viewer_location".into(), json!(self.location(headers)));
        data.insert("referrer".into(), json!(referrer(headers)));
        if let Some(name) = crawler(&String::from_utf8_lossy(agent)) {
            data.insert("crawler".into(), json!(name));
        }
        for (name, value) in extra {
            data.insert((*name).into(), json!(value));
        }
        let event = Public {
            account_id: seen.account_id.to_owned(),
            livemode: seen.livemode,
            kind,
            certificate_id: seen.certificate_id.to_owned(),
            data: Value::Object(data),
            at: now_us(),
        };
        self.queue.try_send(event).is_ok()
    }

    /// "City, CC" from the configured CDN headers, or `None`.
    fn location(&self, headers: &HeaderMap) -> Option<String> {
        let read = |name: &Option<String>| {
            let value = headers.get(name.as_deref()?)?.to_str().ok()?.trim();
            // Cloudflare's "unknown" and "Tor" countries say nothing.
            let known = !value.is_empty() && value != "XX" && value != "T1";
            (known && value.len() <= MAX_TEXT && !value.chars().any(char::is_control))
                .then(|| value.to_owned())
        };
        match (read(&self.city_header), read(&self.country_header)) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (city, country) => city.or(country),
        }
    }
}

impl crate::registry::Registry {
    /// Counts a `kind` event of the public side (see [`Views::count`]).
    pub fn count_public(
        &self,
        kind: &'static str,
        seen: Seen<'_>,
        client: Option<IpAddr>,
        headers: &HeaderMap,
        extra: &[(&str, &str)],
    ) -> bool {
        self.webhooks
            .views
            .count(kind, seen, client, headers, extra)
    }
}

/// The host of the `Referer`, when it names one.
fn referrer(headers: &HeaderMap) -> Option<String> {
    let text = headers.get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(text).ok()?;
    let host = url.host_str()?;
    (host.len() <= MAX_TEXT).then(|| host.trim_start_matches("www.").to_owned())
}

/// The crawler a user agent names, if any.
pub fn crawler(agent: &str) -> Option<&'static str> {
    let agent = agent.to_ascii_lowercase();
    CRAWLERS
        .iter()
        .find(|(mark, _)| agent.contains(mark))
        .map(|(_, name)| *name)
}

/// Appends the queued events to the outbox in batches until the queue's
/// senders are gone, poking `appended` after each batch.
pub async fn append(
    store: Store,
    mut receiver: Receiver,
    appended: std::sync::Weak<super::Webhooks>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(error) = write(&store, &batch).await {
            tracing::warn!(%error, dropped = batch.len(), "could not record public events");
        }
        batch.clear();
        match appended.upgrade() {
            Some(hooks) => hooks.appended.notify_one(),
            None => return,
        }
    }
}

async fn write(
    store: &Store,
    batch: &[Public],
) -> Result<(), crate::registry::error::RegistryError> {
    let mut tx = store.begin().await?;
    for event in batch {
        let new = NewEvent {
            account_id: &event.account_id,
            livemode: event.livemode,
            kind: event.kind,
            certificate_id: Some(&event.certificate_id),
            data: event.data.clone(),
        };
        store.append_event(&mut *tx, &new, event.at).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_crawlers_are_named_and_browsers_are_not() {
        let linkedin =
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)";
        assert_eq!(crawler(linkedin), Some("linkedin"));
        assert_eq!(
            crawler("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
            Some("facebook")
        );
        assert_eq!(crawler("Slackbot-LinkExpanding 1.0"), Some("slack"));
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(crawler(firefox), None);
    }

    #[tokio::test]
    async fn a_visitor_counts_once_an_hour_per_certificate_with_place_and_referrer() {
        let config = WebhookConfig {
            country_header: Some("cf-ipcountry".into()),
            city_header: Some("cf-ipcity".into()),
            ..WebhookConfig::default()
        };
        let (views, mut receiver) = Views::new(&config);
        let mut headers = HeaderMap::new();
        headers.insert("cf-ipcountry", "SE".parse().unwrap());
        headers.insert("cf-ipcity", "Stockholm".parse().unwrap());
        headers.insert(
            header::REFERER,
            "https://www.linkedin.com/feed/".parse().unwrap(),
        );
        let seen = Seen {
            certificate_id: "cert_a",
            account_id: "acct",
            livemode: true,
        };
        let client = Some("203.0.113.7".parse().unwrap());
        let counted = (0..50)
            .filter(|_| views.count("certificate.viewed", seen, client, &headers, &[]))
            .count();
        assert_eq!(counted, 1);
        let other = Seen {
            certificate_id: "cert_b",
            ..seen
        };
        assert!(views.count("certificate.viewed", other, client, &headers, &[]));
        let event = receiver.recv().await.unwrap();
        assert_eq!(
            event.data,
            json!({"viewer_location": "Stockholm, SE", "referrer": "linkedin.com"})
        );
    }
}
