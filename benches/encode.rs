//! PNG encoder settings on the rendered demo certificate: time (criterion)
//! and size (printed), against tiny-skia's own encoder as the baseline.
//!
//! `cargo bench --bench encode` (`-- base_bands` for the band levels only)

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use signet::bands::{self, Bands};
use signet::config::{DEMO_TEMPLATE, DEMO_USER};
use signet::encode::{encode_png, DeflateCompression, Filter, Settings};
use signet::modifications::Modification;
use signet::render::{RenderLimits, Renderer};
use signet::template::Template;

fn encoders(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let limits = RenderLimits {
        max_pixels: 25_000_000,
        max_image_bytes: 8 << 20,
        max_image_pixels: 4 << 20,
        max_memory_bytes: 1 << 30,
        memory_wait: std::time::Duration::from_secs(10),
        max_nodes: 100_000,
    };
    let renderer = Renderer::new(&root.join("fonts"), &[], limits).expect("fonts load");
    let dir = root.join("templates").join(DEMO_USER);
    let source =
        std::fs::read_to_string(dir.join(format!("{DEMO_TEMPLATE}.svg"))).expect("demo template");
    let template = Template::prepare("demo", source, dir.clone(), &renderer).expect("prepares");
    let mods = vec![Modification::text("text_candidate", "Ada Lovelace")];
    let svg = template
        .apply(&template.plan(&mods), &renderer)
        .expect("applies")
        .svg;
    let pixmap = renderer
        .rasterize(&svg, &template.images, |_| 1.0)
        .expect("renders");

    let baseline = pixmap.encode_png().expect("encodes").len();
    let level = |n| Settings {
        deflate: DeflateCompression::Level(n),
        filter: Filter::Adaptive,
    };
    let variants = [
        (
            "fdeflate",
            Settings {
                deflate: DeflateCompression::FdeflateUltraFast,
                filter: Filter::Adaptive,
            },
        ),
        ("level1", level(1)),
        ("level2", level(2)),
        ("level3", level(3)),
        ("level4", level(4)),
        ("level5", level(5)),
        ("level6", level(6)),
    ];
    eprintln!("size tiny-skia default (RGBA, level 6): {baseline} bytes");
    for (name, level) in variants {
        let size = encode_png(&pixmap, level).expect("encodes").len();
        eprintln!(
            "size {name} (RGB): {size} bytes, {:.3}x the baseline",
            size as f64 / baseline as f64
        );
    }

    let mut group = c.benchmark_group("encode");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    group.bench_function("tiny_skia_default", |b| {
        b.iter(|| black_box(&pixmap).encode_png().expect("encodes"))
    });
    for (name, level) in variants {
        group.bench_function(name, |b| {
            b.iter(|| encode_png(black_box(&pixmap), level).expect("encodes"))
        });
    }
    group.bench_function("rasterize", |b| {
        b.iter(|| {
            renderer
                .rasterize(black_box(&svg), &template.images, |_| 1.0)
                .expect("renders")
        })
    });
    group.finish();

    // A template base's bands are compressed once and copied into every
    // incremental response: the level trades the first miss's time for
    // every later response's size.
    let mut group = c.benchmark_group("base_bands");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    for n in [5, 6, 7, 8, 9] {
        let all = vec![true; pixmap.height() as usize];
        let size = Bands::encode(&pixmap, &mut bands::Encoder::new(n))
            .png(&pixmap, &all, &mut bands::Encoder::default())
            .expect("same size")
            .len();
        eprintln!(
            "size bands level {n}: {size} bytes, {:.3}x the baseline",
            size as f64 / baseline as f64
        );
        group.bench_function(format!("level{n}"), |b| {
            b.iter(|| Bands::encode(black_box(&pixmap), &mut bands::Encoder::new(n)))
        });
    }
    group.finish();
}

criterion_group!(benches, encoders);
criterion_main!(benches);
