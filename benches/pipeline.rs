//! Each stage of a request on the shipped demo certificate: verify, decode,
//! prepare, splice, render+encode (a miss), and a cache lookup (a hit).
//!
//! `cargo bench --bench pipeline`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use signet::cache::{Image, ImageCache, Outcome};
use signet::config::{DEMO_SECRET, DEMO_TEMPLATE, DEMO_USER};
use signet::modifications::{self, Limits, Modification};
use signet::render::{RenderLimits, Renderer};
use signet::request::{parse_path, ImagePath};
use signet::signing;
use signet::template::Template;

const LIMITS: Limits = Limits {
    max_text_chars: 1000,
    max_modifications: 64,
};

fn setup() -> (Arc<Renderer>, String, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let limits = RenderLimits {
        max_pixels: 25_000_000,
        max_image_bytes: 8 << 20,
        max_nodes: 100_000,
    };
    let renderer = Arc::new(Renderer::new(&root.join("fonts"), limits).expect("fonts load"));
    let dir = root.join("templates").join(DEMO_USER);
    let source =
        std::fs::read_to_string(dir.join(format!("{DEMO_TEMPLATE}.svg"))).expect("demo template");
    (renderer, source, dir)
}

fn stages(c: &mut Criterion) {
    let (renderer, source, dir) = setup();
    let json = r#"[{"name":"text_candidate","text":"Ada Lovelace"}]"#;
    let encoded = signing::encode_modifications(json);
    let payload = signing::payload(DEMO_USER, DEMO_TEMPLATE, &encoded);
    let signature = signing::sign(DEMO_SECRET, &payload);
    let secrets = vec![DEMO_SECRET.to_string()];

    c.bench_function("verify", |b| {
        b.iter(|| signing::verify(black_box(&secrets), &payload, &signature))
    });
    c.bench_function("decode", |b| {
        b.iter(|| modifications::decode(black_box(&encoded), LIMITS))
    });
    c.bench_function("prepare", |b| {
        b.iter(|| Template::prepare(source.clone(), dir.clone(), &renderer).expect("prepares"))
    });

    let template = Template::prepare(source.clone(), dir.clone(), &renderer).expect("prepares");
    let mods = vec![Modification {
        name: "text_candidate".into(),
        text: "Ada Lovelace".into(),
    }];
    c.bench_function("splice", |b| {
        b.iter(|| template.apply(&template.plan(black_box(&mods))))
    });

    let svg = template.apply(&template.plan(&mods));
    let mut slow = c.benchmark_group("miss");
    slow.sample_size(10)
        .measurement_time(Duration::from_secs(8));
    // The baseline: the same render with tiny-skia's default PNG encoder.
    slow.bench_function("naive", |b| {
        b.iter(|| {
            let pixmap = renderer.rasterize(black_box(&svg), &dir).expect("renders");
            pixmap.encode_png().expect("encodes")
        })
    });
    slow.bench_function("render_and_encode", |b| {
        b.iter(|| renderer.render(black_box(&svg), &dir).expect("renders"))
    });
    slow.finish();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cache = ImageCache::new(64 << 20, Duration::from_secs(10));
    let path: ImagePath = parse_path(&format!("/{DEMO_USER}/{DEMO_TEMPLATE}.png")).expect("path");
    let key = ImageCache::key(&template, &path, &mods);
    let png = renderer.render(&svg, &dir).expect("renders").png;
    let image = Outcome::Image(Arc::new(Image {
        body: png.into(),
        render_time: Duration::ZERO,
    }));
    runtime
        .block_on(cache.get_or_render(key, async move { Ok(image) }))
        .expect("cached");
    c.bench_function("hit_lookup", |b| {
        b.iter(|| {
            let key = ImageCache::key(&template, &path, black_box(&mods));
            runtime.block_on(cache.get(&key)).expect("hit")
        })
    });
}

criterion_group!(benches, stages);
criterion_main!(benches);
