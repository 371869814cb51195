//! Each stage of a request on the shipped demo certificate: verify, decode,
//! prepare, apply (with and without fitting), render+encode (a miss) in
//! each format, the incremental miss, and a cache lookup (a hit); and
//! fitting long text (`fit/…`): 500 mixed-script or 800 Latin characters
//! cut with an ellipsis, 1,000 wrapped on two lines and cut.
//!
//! `cargo bench --bench pipeline` (`-- fit/` for fitting alone)

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use signet::cache::{Image, ImageCache, Outcome};
use signet::config::{DEMO_SECRET, DEMO_TEMPLATE, DEMO_USER};
use signet::incremental::{Incremental, Path as How};
use signet::modifications::{self, Limits, Modification};
use signet::options::RenderOptions;
use signet::request::{parse_path, Format, ImagePath};
use signet::signing;
use signet::template::Template;

const LIMITS: Limits = Limits {
    max_text_chars: 1000,
    max_modifications: 64,
};

fn stages(c: &mut Criterion) {
    let (renderer, source, dir) = common::setup();
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
        b.iter(|| {
            Template::prepare("demo", source.clone(), dir.clone(), &renderer).expect("prepares")
        })
    });

    let template =
        Template::prepare("demo", source.clone(), dir.clone(), &renderer).expect("prepares");
    let mods = vec![Modification::text("text_candidate", "Ada Lovelace")];
    // The demo certificate's name is a fitted layer; the same template
    // without `data-fit` gives the cost of fitting.
    let unfitted_source = source.replace(r#"data-fit="shrink""#, "");
    assert_ne!(unfitted_source, source, "the demo name layer is fitted");
    let unfitted =
        Template::prepare("demo", unfitted_source, dir.clone(), &renderer).expect("prepares");
    let apply = |t: &Template| {
        t.apply(&t.plan(black_box(&mods)), &renderer)
            .expect("applies")
    };
    let mut fit = c.benchmark_group("apply");
    fit.bench_function("without_fit", |b| b.iter(|| apply(&unfitted)));
    fit.bench_function("with_fit", |b| b.iter(|| apply(&template)));
    fit.finish();

    fitting(c, &renderer, &dir);

    let svg = apply(&template).svg;
    let plain_svg = apply(&unfitted).svg;
    let png = RenderOptions::default();
    let mut slow = c.benchmark_group("miss");
    slow.sample_size(10)
        .measurement_time(Duration::from_secs(8));
    // The baseline: the same render with tiny-skia's default PNG encoder.
    slow.bench_function("naive", |b| {
        b.iter(|| {
            let svg = apply(&unfitted).svg;
            let pixmap = renderer
                .rasterize(black_box(&svg), &template.images, |_| 1.0)
                .expect("renders");
            pixmap.encode_png().expect("encodes")
        })
    });
    slow.bench_function("render_and_encode", |b| {
        b.iter(|| {
            let svg = apply(&template).svg;
            renderer
                .render(black_box(&svg), &template.images, Format::Png, &png)
                .expect("renders")
        })
    });
    slow.bench_function("render_and_encode_without_fit", |b| {
        b.iter(|| {
            let svg = apply(&unfitted).svg;
            renderer
                .render(black_box(&svg), &template.images, Format::Png, &png)
                .expect("renders")
        })
    });
    // The server's miss: a different name each time, over the template's
    // base (built by the first two misses, outside the measurement).
    let shared = Arc::new(
        Template::prepare("demo", source.clone(), dir.clone(), &renderer).expect("prepares"),
    );
    let incremental = Incremental::new(64 << 20);
    let mut n = 0u64;
    let mut miss = || {
        n += 1;
        let mods = vec![Modification::text(
            "text_candidate",
            &format!("Recipient {n}"),
        )];
        let plan = shared.plan(&mods);
        let applied = shared.apply(&plan, &renderer).expect("applies");
        incremental
            .render(&renderer, &shared, &plan, &applied, Format::Png, &png)
            .expect("renders")
    };
    miss();
    assert_eq!(miss().1, How::Incremental, "the demo renders incrementally");
    slow.bench_function("incremental", |b| b.iter(&mut miss));
    for format in [Format::Jpeg, Format::Webp, Format::Pdf] {
        slow.bench_function(format!("format_{}", format.extension()), |b| {
            b.iter(|| {
                renderer
                    .render(black_box(&plain_svg), &template.images, format, &png)
                    .expect("renders")
            })
        });
    }
    slow.finish();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let cache = ImageCache::new(64 << 20, Duration::from_secs(10));
    let path: ImagePath = parse_path(&format!("/{DEMO_USER}/{DEMO_TEMPLATE}.png")).expect("path");
    let key = ImageCache::key(&template, &Default::default(), &path, &mods, &png);
    let body = renderer
        .render(&svg, &template.images, Format::Png, &png)
        .expect("renders")
        .body;
    let image = Outcome::Image(Arc::new(Image {
        body: body.into(),
        render_time: Duration::ZERO,
        fit: String::new(),
        incremental: false,
    }));
    runtime
        .block_on(cache.get_or_render(key, async move { Ok(image) }))
        .expect("cached");
    c.bench_function("hit_lookup", |b| {
        b.iter(|| {
            let key = ImageCache::key(
                &template,
                &Default::default(),
                &path,
                black_box(&mods),
                &png,
            );
            runtime.block_on(cache.get(&key)).expect("hit")
        })
    });
}

/// Layers 800 units wide at 100 px, down to 20 px, cut with `…`: one line
/// (`name`) or two wrapped (`course`).
const ELLIPSIS: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="400"><rect id="box" x="100" y="100" width="800" height="200" fill="none"/><text id="name" x="500" y="250" text-anchor="middle" font-family="serif" font-size="100" data-fit="shrink" data-box="box" data-min-size="20" data-overflow="ellipsis">Jane Doe</text><text id="course" x="500" y="250" text-anchor="middle" font-family="serif" font-size="100" data-fit="wrap" data-box="box" data-max-lines="2" data-min-size="20" data-overflow="ellipsis">Course</text></svg>"#;

fn fitting(c: &mut Criterion, renderer: &signet::render::Renderer, dir: &std::path::Path) {
    let template =
        Template::prepare("demo", ELLIPSIS.into(), dir.to_owned(), renderer).expect("prepares");
    let cycle = |text: &str, n: usize| -> String { text.chars().cycle().take(n).collect() };
    let mixed = "Ada ليلى דוד अनन्या สมชาย 王小明 김민준 Ελένη 🎓 ";
    let latin = "Maximiliana Wilhelmina Augusta of Hohenzollern ";
    let cases = [
        ("ellipsis_500_mixed", "name", cycle(mixed, 500)),
        ("ellipsis_800_latin", "name", cycle(latin, 800)),
        ("wrap_1000_mixed", "course", cycle(mixed, 1000)),
        ("wrap_1000_latin", "course", cycle(latin, 1000)),
    ];
    let mut group = c.benchmark_group("fit");
    group.sample_size(10);
    for (name, layer, text) in cases {
        let mods = vec![Modification::text(layer, &text)];
        group.bench_function(name, |b| {
            b.iter(|| {
                let applied = template
                    .apply(&template.plan(black_box(&mods)), renderer)
                    .expect("fits");
                assert!(applied.fit[0].ends_with("/ellipsis"), "{:?}", applied.fit);
                applied
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
