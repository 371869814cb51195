//! What every `/v1` request pays before its handler: the key check
//! (hash of the presented secret, the kept key or a store read) and the
//! rate-limit count, on a registry over SQLite in a temporary folder.
//! The account's limit never binds, as on a busy integration's key.
//!
//! `cargo bench --bench gate`

use criterion::{criterion_group, criterion_main, Criterion};
use signet::config::{Config, UserConfig};
use signet::registry::scope::Scopes;
use signet::registry::store::now_us;
use signet::registry::{Actor, Environment, Registry};

fn gate(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let data = tempfile::tempdir().expect("a folder");
    let config = Config {
        data_dir: data.path().to_owned(),
        users: vec![UserConfig {
            id: "bench".into(),
            secrets: vec!["a bench secret of more than thirty-two bytes".into()],
            plan: Some("custom".into()),
            rate_limit_per_minute: Some(100_000_000),
            batch_size: Some(100),
            ..UserConfig::default()
        }],
        ..Config::default()
    };
    let (registry, secret) = runtime.block_on(async {
        let registry = Registry::open(&config).await.expect("registry opens");
        let created = registry
            .create_key(
                "bench",
                Environment::Live,
                Scopes::parse(&["*"]).expect("scopes"),
                None,
                &Actor::cli(),
                None,
            )
            .await
            .expect("a key");
        (registry, created.secret)
    });
    c.bench_function("gate/key check + rate limit", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let key = registry
                    .authenticate(Some(&secret))
                    .await
                    .expect("the key checks");
                registry
                    .count_request(&key, now_us())
                    .await
                    .expect("counted")
            })
        })
    });
    c.bench_function("gate/block_on alone (the harness's share)", |b| {
        b.iter(|| runtime.block_on(async { std::hint::black_box(1) }))
    });
}

criterion_group!(benches, gate);
criterion_main!(benches);
