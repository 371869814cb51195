//! Rendered images in memory, bounded in bytes, with concurrent misses for
//! one key coalesced into a single render.
//!
//! The key hashes the template version with the decoded modifications, so
//! an edited template can never hit an entry of its previous version.
//! Failures are kept for a while, so a broken URL hit in a loop costs one
//! render per interval rather than one per hit; each further failure of
//! the same key doubles the interval, up to an hour, so a URL whose render
//! runs to its deadline (or to fitting's bound) cannot take a render slot
//! again every `failure_ttl`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use moka::Expiry;
use sha2::{Digest, Sha256};

use crate::images::Images;
use crate::modifications::Modification;
use crate::options::RenderOptions;
use crate::render::RenderError;
use crate::request::ImagePath;
use crate::template::Template;

/// A cache key: SHA-256 of everything that determines the output.
pub type Key = [u8; 32];

/// A rendered image, shared by every response that serves it.
#[derive(Debug)]
pub struct Image {
    /// The encoded bytes; cloning shares them.
    pub body: Bytes,
    /// How long the render took, for `Server-Timing`.
    pub render_time: Duration,
    /// What fitting did, for `x-stencil-fit`; empty without fitted layers.
    pub fit: String,
    /// Rendered incrementally (from a template base) rather than whole.
    pub incremental: bool,
}

/// What a render produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    Image(Arc<Image>),
    Failed(RenderError),
}

/// Why no outcome could be had; never cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The longest a failure is remembered, however often it repeats (unless
/// `failure_ttl` itself is longer).
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(3600);

/// Keys whose renders failed in a row, and how many times, for the
/// backoff. Forgotten after a quiet while, or at the key's next success.
type Strikes = moka::sync::Cache<Key, u32>;

/// Per-entry lifetimes: images stay until evicted; a failure for
/// `failure_ttl`, doubled for each failure of the key before it.
struct Lifetimes {
    failure_ttl: Duration,
    strikes: Strikes,
}

impl Lifetimes {
    fn failure(&self, strikes: u32) -> Duration {
        let doubled = 2u32.saturating_pow(strikes.saturating_sub(1).min(31));
        self.failure_ttl
            .saturating_mul(doubled)
            .min(MAX_FAILURE_BACKOFF.max(self.failure_ttl))
    }
}

impl Expiry<Key, Outcome> for Lifetimes {
    fn expire_after_create(&self, key: &Key, value: &Outcome, _: Instant) -> Option<Duration> {
        match value {
            Outcome::Image(_) => None,
            Outcome::Failed(e) if !backs_off(e) => Some(self.failure_ttl),
            Outcome::Failed(_) => Some(self.failure(self.strikes.get(key).unwrap_or(1))),
        }
    }
}

/// Whether repeated failures like `error` are remembered for longer. A
/// render is a function of its key, so a failure repeats — a timeout, a
/// fitting bound, a refused template — except a missing asset, which an
/// upload mends without changing the URL.
fn backs_off(error: &RenderError) -> bool {
    !matches!(error, RenderError::AssetNotFound(_))
}

/// Most keys whose failures are counted; beyond it the least recently
/// failed are forgotten (and start again at `failure_ttl`).
const MAX_STRIKES: u64 = 100_000;

/// Overhead counted for each entry besides its body.
const ENTRY_OVERHEAD: usize = 160;

/// The image cache.
#[derive(Clone)]
pub struct ImageCache {
    inner: Cache<Key, Outcome>,
    /// Shared with the expiry, which reads a failing key's count.
    strikes: Strikes,
}

impl ImageCache {
    pub fn new(max_bytes: u64, failure_ttl: Duration) -> ImageCache {
        let strikes = moka::sync::Cache::builder()
            .max_capacity(MAX_STRIKES)
            // A count outlives the longest memory of a failure, so the next
            // failure after it expires still doubles.
            .time_to_live(MAX_FAILURE_BACKOFF.max(failure_ttl).saturating_mul(2))
            .build();
        let lifetimes = Lifetimes {
            failure_ttl,
            strikes: strikes.clone(),
        };
        let inner = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_: &Key, value: &Outcome| {
                let body = match value {
                    Outcome::Image(image) => image.body.len(),
                    Outcome::Failed(_) => 0,
                };
                u32::try_from(body + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .expire_after(lifetimes)
            // Least recently used, not moka's default TinyLFU: its
            // admission can drop an image rendered a moment ago in favour
            // of a storm's one-off ones (an image evicted while nobody
            // asked for it came back and was rejected at once, so its next
            // hit waited for a render behind the storm's queue).
            // Certificates are asked for in bursts after they are posted,
            // so recency is what predicts the next request.
            .eviction_policy(EvictionPolicy::lru())
            .build();
        ImageCache { inner, strikes }
    }

    /// The cache key of a request.
    pub fn key(
        template: &Template,
        assets: &Images,
        path: &ImagePath,
        mods: &[Modification],
        options: &RenderOptions,
    ) -> Key {
        let mut hash = Sha256::new();
        hash.update(template.hash);
        // The bytes of every asset a `src` names: a replaced file is a new
        // image.
        for (href, digest) in assets.digests() {
            hash.update((href.len() as u64).to_le_bytes());
            hash.update(href);
            hash.update(digest);
        }
        for part in [
            path.user.as_str(),
            path.base.as_str(),
            path.format.extension(),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        // Re-serialised, so every base64 flavour and JSON escaping of the
        // same modifications shares one entry.
        let canonical = serde_json::to_vec(mods).unwrap_or_default();
        hash.update((canonical.len() as u64).to_le_bytes());
        hash.update(canonical);
        hash.update(options.key_bytes());
        hash.finalize().into()
    }

    /// The cached outcome, without rendering.
    pub async fn get(&self, key: &Key) -> Option<Outcome> {
        self.inner.get(key).await
    }

    /// The cached outcome, or the one `render` produces. Callers asking for
    /// the same key meanwhile wait for this render. It runs in a task of its
    /// own, so a caller that goes away (a closed connection) neither cancels
    /// nor restarts it.
    pub async fn get_or_render<F>(&self, key: Key, render: F) -> Result<Outcome, Busy>
    where
        F: Future<Output = Result<Outcome, Busy>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let strikes = self.strikes.clone();
        // Counted before the outcome is stored, where the expiry reads it.
        let render = async move {
            let outcome = render.await?;
            match &outcome {
                Outcome::Image(_) => strikes.invalidate(&key),
                Outcome::Failed(e) if backs_off(e) => {
                    let n = strikes.get(&key).unwrap_or(0);
                    strikes.insert(key, n.saturating_add(1));
                }
                Outcome::Failed(_) => {}
            }
            Ok(outcome)
        };
        let task = tokio::spawn(async move { inner.try_get_with(key, render).await });
        match task.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(busy)) => Err(*busy),
            Err(_) => Ok(Outcome::Failed(RenderError::Failed(
                "render task ended".into(),
            ))),
        }
    }

    /// Entries and their weighed bytes, for health checks.
    pub fn usage(&self) -> (u64, u64) {
        (self.inner.entry_count(), self.inner.weighted_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(bytes: usize) -> Outcome {
        Outcome::Image(Arc::new(Image {
            body: Bytes::from(vec![0; bytes]),
            render_time: Duration::ZERO,
            fit: String::new(),
            incremental: false,
        }))
    }

    fn key(n: u32) -> Key {
        Sha256::digest(n.to_le_bytes()).into()
    }

    fn failed() -> Outcome {
        Outcome::Failed(RenderError::Failed("the render passed its deadline".into()))
    }

    #[test]
    fn each_failure_in_a_row_doubles_how_long_it_is_remembered_up_to_the_cap() {
        let lifetimes = Lifetimes {
            failure_ttl: Duration::from_secs(10),
            strikes: moka::sync::Cache::new(10),
        };
        let secs: Vec<u64> = [1, 2, 3, 4, 9, 40, u32::MAX]
            .map(|n| lifetimes.failure(n).as_secs())
            .into();
        assert_eq!(secs, [10, 20, 40, 80, 2560, 3600, 3600]);
        let long = Lifetimes {
            failure_ttl: Duration::from_secs(7200),
            strikes: moka::sync::Cache::new(10),
        };
        assert_eq!(long.failure(5), Duration::from_secs(7200));
    }

    #[tokio::test]
    async fn a_key_failing_again_is_remembered_longer_and_a_success_resets_it() {
        let cache = ImageCache::new(1 << 20, Duration::from_millis(1));
        let k = key(1);
        let ttl = |cache: &ImageCache| {
            let lifetimes = Lifetimes {
                failure_ttl: Duration::from_millis(1),
                strikes: cache.strikes.clone(),
            };
            lifetimes.expire_after_create(&k, &failed(), Instant::now())
        };
        for (round, want) in [(1, 1), (2, 2), (3, 4)] {
            cache.inner.invalidate(&k).await;
            let outcome = cache.get_or_render(k, async { Ok(failed()) }).await;
            assert!(matches!(outcome, Ok(Outcome::Failed(_))));
            assert_eq!(cache.strikes.get(&k), Some(round));
            assert_eq!(ttl(&cache), Some(Duration::from_millis(want)));
        }
        cache.inner.invalidate(&k).await;
        assert!(cache
            .get_or_render(k, async { Ok(image(10)) })
            .await
            .is_ok());
        assert_eq!(cache.strikes.get(&k), None);
        // A missing asset is not counted: an upload mends it.
        let missing = Outcome::Failed(RenderError::AssetNotFound("logo".into()));
        cache.inner.invalidate(&k).await;
        assert!(cache.get_or_render(k, async { Ok(missing) }).await.is_ok());
        assert_eq!(cache.strikes.get(&k), None);
    }

    #[tokio::test]
    async fn an_image_asked_for_often_outlives_a_storm_of_new_ones() {
        let cache = ImageCache::new(100 * 1000, Duration::from_secs(1));
        let hot = key(0);
        let fill = || async { Ok::<_, Busy>(image(1000)) };
        assert!(cache.get_or_render(hot, fill()).await.is_ok());
        for _ in 0..50 {
            cache.get(&hot).await;
        }
        // Nobody asks for it while a storm passes: it may go.
        for n in 10_000..11_000 {
            assert!(cache.get_or_render(key(n), fill()).await.is_ok());
        }
        assert!(cache.get_or_render(hot, fill()).await.is_ok());
        for round in 0..60u32 {
            // Misses arrive together, as from many connections.
            let storm: Vec<_> = (0..32)
                .map(|i| {
                    let cache = cache.clone();
                    tokio::spawn(async move {
                        cache
                            .get_or_render(key(20_000 + round * 32 + i), fill())
                            .await
                    })
                })
                .collect();
            for miss in storm {
                assert!(matches!(miss.await, Ok(Ok(_))));
            }
            assert!(
                cache.get(&hot).await.is_some(),
                "the image asked for after every storm was evicted in round {round}"
            );
        }
        let (_, bytes) = cache.usage();
        assert!(bytes <= 100 * 1000, "{bytes}");
    }
}
