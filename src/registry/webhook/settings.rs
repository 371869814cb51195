//! The `[webhooks]` section of the configuration: the SSRF switch, the
//! delivery timeout and schedule, the bounds on concurrent sends, and
//! the CDN headers `certificate.viewed` reads a visitor's place from.
//!
//! Every field has a default, so the section may be left out.

use serde::Deserialize;

/// Retries after the first attempt fails, in seconds: the Standard
/// Webhooks schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) carried on
/// with 10 h steps to about three days (2 d 19 h 35 min), 12 attempts in
/// all.
pub const DEFAULT_RETRY_DELAYS_S: &[u64] = &[
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    10 * 3600,
    10 * 3600,
    10 * 3600,
    10 * 3600,
    10 * 3600,
];

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Lets endpoint URLs point into loopback, private, link-local,
    /// unique-local, CGNAT and other non-public networks, and lets live
    /// endpoints use plain `http`. Default `false`: such URLs are refused
    /// when made, and addresses a name resolves to are checked again at
    /// every connection. Only for tests and closed networks.
    pub allow_private_networks: bool,
    /// How long a receiver has to answer an attempt, in milliseconds
    /// (connection, request and answer). Default 10 000.
    pub timeout_ms: u64,
    /// Waits before each retry, in milliseconds; the delivery is given up
    /// once they run out. Default [`DEFAULT_RETRY_DELAYS_S`].
    pub retry_delays_ms: Vec<u64>,
    /// An endpoint whose attempts have all failed for this long (none
    /// succeeded since the first of them) is disabled, in milliseconds.
    /// Default three days.
    pub disable_after_ms: u64,
    /// Attempts in flight at once, over all endpoints. Default 256.
    pub max_concurrency: usize,
    /// Attempts in flight at once to one endpoint, so a slow receiver
    /// holds at most this many of the slots. Default 16.
    pub max_concurrency_per_endpoint: usize,
    /// How often the outbox is read when nothing wakes the worker sooner,
    /// in milliseconds. Default 50.
    pub poll_ms: u64,
    /// The request header a CDN in front puts the visitor's country in
    /// (`cf-ipcountry` behind Cloudflare); unset, none is read.
    pub country_header: Option<String>,
    /// The request header with the visitor's city (`cf-ipcity`); unset,
    /// none is read.
    pub city_header: Option<String>,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            allow_private_networks: false,
            timeout_ms: 10_000,
            retry_delays_ms: DEFAULT_RETRY_DELAYS_S.iter().map(|s| s * 1000).collect(),
            disable_after_ms: 3 * 24 * 3600 * 1000,
            max_concurrency: 256,
            max_concurrency_per_endpoint: 16,
            poll_ms: 50,
            country_header: None,
            city_header: None,
        }
    }
}

impl WebhookConfig {
    /// Refuses bounds that would stop deliveries altogether.
    pub fn check(&self) -> Result<(), String> {
        if self.timeout_ms == 0
            || self.max_concurrency == 0
            || self.max_concurrency_per_endpoint == 0
            || self.poll_ms == 0
        {
            return Err(
                "webhooks: timeout_ms, max_concurrency, max_concurrency_per_endpoint \
                        and poll_ms must be above 0"
                    .into(),
            );
        }
        if self.retry_delays_ms.len() > 100 {
            return Err("webhooks: retry_delays_ms holds at most 100 delays".into());
        }
        for header in [&self.country_header, &self.city_header]
            .into_iter()
            .flatten()
        {
            if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(format!("webhooks: {header:?} is not a header name"));
            }
        }
        Ok(())
    }

    /// The wait before retry number `failed` (1 after the first failed
    /// attempt), in microseconds; `None` once the schedule is spent.
    pub fn retry_delay_us(&self, failed: u64) -> Option<i64> {
        let index = usize::try_from(failed.checked_sub(1)?).ok()?;
        let ms = *self.retry_delays_ms.get(index)?;
        i64::try_from(ms.saturating_mul(1000)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_spans_about_three_days_in_twelve_attempts() {
        let config = WebhookConfig::default();
        let total: i64 = (1..=11).map(|n| config.retry_delay_us(n).unwrap()).sum();
        let hours = total / 3_600_000_000;
        assert!((60..=72).contains(&hours), "{hours} h");
        assert_eq!(config.retry_delay_us(1), Some(5_000_000));
        assert_eq!(config.retry_delay_us(12), None);
        assert_eq!(config.retry_delay_us(0), None);
    }

    #[test]
    fn a_section_of_toml_sets_the_switch_and_keeps_the_other_defaults() {
        let config: WebhookConfig =
            toml::from_str("allow_private_networks = true\ncountry_header = \"cf-ipcountry\"")
                .unwrap();
        assert!(config.allow_private_networks);
        assert_eq!(config.timeout_ms, 10_000);
        assert!(config.check().is_ok());
        assert!(toml::from_str::<WebhookConfig>("allow_private = true").is_err());
        let bad = WebhookConfig {
            country_header: Some("not a header".into()),
            ..WebhookConfig::default()
        };
        assert!(bad.check().is_err());
    }
}
