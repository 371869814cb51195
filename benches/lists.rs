//! A certificate list page at depth: 1,000,000 certificates of one
//! account on SQLite (in a temporary folder), then the first page and
//! the page after the 500,000th certificate, each fetched many times as
//! the `GET /v1/certificates` handler fetches it (20 a page, newest first,
//! paged by cursor). Prints p50/p90 of each and their ratio.
//!
//! `cargo bench --bench lists` (`-- N` for another number of certificates)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use signet::config::{Config, UserConfig};
use signet::registry::store::{now_us, CertificateFilter, CertificateRecord};
use signet::registry::{Environment, Registry};

const PAGE: u32 = 20;
const FETCHES: usize = 300;
const ROWS_PER_TRANSACTION: usize = 10_000;

fn record(i: usize, now: i64) -> CertificateRecord {
    CertificateRecord {
        id: format!("cert_{i:024}"),
        account_id: "bench".into(),
        environment: Environment::Live,
        status: "issued".into(),
        template_id: "TEafv3AfNptmzii4zj2jkc".into(),
        template_hash: "0".repeat(64),
        salt: "0".repeat(64),
        recipient_name: format!("Recipient Number {i}"),
        recipient_email: Some(format!("r{i}@example.org")),
        fields: BTreeMap::from([("course_name".into(), "Advanced Project Management".into())]),
        metadata: BTreeMap::new(),
        expires_at: None,
        revoked_at: None,
        revocation_reason: None,
        // One microsecond apart, oldest first.
        created_at: now - 10_000_000 + i as i64,
        updated_at: now,
    }
}

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort_unstable();
    times[((times.len() - 1) as f64 * p) as usize]
}

fn main() {
    let total: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let data = tempfile::tempdir().expect("a folder");
    let config = Config {
        data_dir: data.path().to_owned(),
        users: vec![UserConfig {
            id: "bench".into(),
            secrets: vec!["a bench secret of more than thirty-two bytes".into()],
            ..UserConfig::default()
        }],
        ..Config::default()
    };
    runtime.block_on(async {
        let registry = Registry::open(&config).await.expect("registry opens");
        let store = &registry.store;
        let now = now_us();
        let started = Instant::now();
        for chunk in (0..total).collect::<Vec<_>>().chunks(ROWS_PER_TRANSACTION) {
            let mut tx = store.begin().await.expect("a transaction");
            let records: Vec<_> = chunk.iter().map(|&i| record(i, now)).collect();
            let refs: Vec<_> = records.iter().collect();
            store
                .insert_certificates(&mut tx, &refs)
                .await
                .expect("inserted");
            tx.commit().await.expect("committed");
        }
        println!("{total} certificates written in {:.1?}", started.elapsed());
        let filter = CertificateFilter::default();
        let depth = format!("cert_{:024}", total / 2);
        let measure = |cursor: Option<String>| {
            let filter = filter.clone();
            async move {
                let mut times = Vec::with_capacity(FETCHES);
                for _ in 0..FETCHES {
                    let at = Instant::now();
                    let page = store
                        .list_certificates(
                            "bench",
                            Environment::Live,
                            &filter,
                            PAGE,
                            cursor.as_deref(),
                        )
                        .await
                        .expect("listed")
                        .expect("a known cursor");
                    assert_eq!(page.len(), PAGE as usize + 1);
                    times.push(at.elapsed());
                }
                (percentile(&mut times, 0.5), percentile(&mut times, 0.9))
            }
        };
        let (first50, first90) = measure(None).await;
        let (deep50, deep90) = measure(Some(depth)).await;
        println!("page 1:                 p50 {first50:>10.2?}  p90 {first90:>10.2?}");
        println!(
            "page after {:>9}:   p50 {deep50:>10.2?}  p90 {deep90:>10.2?}",
            total / 2
        );
        println!(
            "ratio deep / first (p50): {:.2}",
            deep50.as_secs_f64() / first50.as_secs_f64()
        );
    });
}
