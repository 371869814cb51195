//! Cache misses on the demo certificate, 200 distinct names each way, in
//! one run: the naive pipeline (substitute, parse, render the whole canvas,
//! tiny-skia's default PNG encoder), the server's whole render, and the
//! server's incremental render. Prints p50/p90 times, p50 sizes and the
//! ratios to naive.
//!
//! `cargo bench --bench miss` (`-- N` for another number of names)

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use signet::config::DEMO_TEMPLATE;
use signet::incremental::{Incremental, Path as How};
use signet::modifications::Modification;
use signet::options::RenderOptions;
use signet::request::Format;
use signet::template::Template;

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Édith",
    "Katherine",
    "Hedy",
    "Barbara",
    "Linus",
    "Margaret",
    "Dennis",
    "Frances",
    "Tim",
    "Radia",
    "Ken",
    "Sophie",
    "Guido",
    "Anita",
    "John",
    "Mary",
    "Donald",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Piaf", "Johnson", "Lamarr", "Liskov", "Torvalds", "Hamilton",
    "Ritchie",
];

fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let first = FIRST[i % FIRST.len()];
            let last = LAST[(i / FIRST.len()) % LAST.len()];
            match i / (FIRST.len() * LAST.len()) {
                0 => format!("{first} {last}"),
                round => format!("{first} {last} {round}"),
            }
        })
        .collect()
}

struct Run {
    times: Vec<Duration>,
    sizes: Vec<usize>,
}

impl Run {
    fn p(&self, q: f64) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t[((t.len() - 1) as f64 * q).round() as usize]
    }
    fn size_p50(&self) -> usize {
        let mut s = self.sizes.clone();
        s.sort();
        s[s.len() / 2]
    }
}

fn run(names: &[String], mut one: impl FnMut(&str) -> usize) -> Run {
    let mut run = Run {
        times: Vec::new(),
        sizes: Vec::new(),
    };
    for name in names {
        let started = Instant::now();
        let size = one(name);
        run.times.push(started.elapsed());
        run.sizes.push(size);
    }
    run
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let (renderer, source, dir) = common::setup();
    let template =
        Arc::new(Template::prepare("demo", source, dir.clone(), &renderer).expect("prepares"));
    let png = RenderOptions::default();
    let apply = |name: &str| {
        let mods = vec![Modification::text("text_candidate", name)];
        template
            .apply(&template.plan(&mods), &renderer)
            .expect("applies")
            .svg
    };
    let names = names(n);
    println!("{n} distinct names on the {DEMO_TEMPLATE} template (2000×1414)");

    let naive = run(&names, |name| {
        let pixmap = renderer
            .rasterize(&apply(name), &template.images, |_| 1.0)
            .expect("renders");
        pixmap.encode_png().expect("encodes").len()
    });
    let whole = run(&names, |name| {
        renderer
            .render(&apply(name), &template.images, Format::Png, &png)
            .expect("renders")
            .body
            .len()
    });
    let incremental = Incremental::new(64 << 20);
    // The first miss of a template version renders whole and starts the
    // base build; the second waits for it. Both are timed on their own,
    // the 200 after them are the steady state.
    let miss = |name: &str| {
        let mods = vec![Modification::text("text_candidate", name)];
        let plan = template.plan(&mods);
        let applied = template.apply(&plan, &renderer).expect("applies");
        incremental
            .render(&renderer, &template, &plan, &applied, Format::Png, &png)
            .expect("renders")
    };
    let timed = |name: &str| {
        let started = Instant::now();
        let (_, how) = miss(name);
        (started.elapsed(), how)
    };
    let (first_time, first_how) = timed("First Miss");
    let (second_time, second_how) = timed("Second Miss");
    assert_eq!(first_how, How::Whole, "the first miss renders whole");
    assert_eq!(
        second_how,
        How::Incremental,
        "the demo renders incrementally"
    );
    let fast = run(&names, |name| {
        let (rendered, how) = miss(name);
        assert_eq!(how, How::Incremental);
        rendered.body.len()
    });

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let base = naive.p(0.5);
    println!(
        "{:<40} {:>9} {:>9} {:>11} {:>8} {:>8}",
        "", "p50 ms", "p90 ms", "p50 bytes", "time", "size"
    );
    for (label, r) in [
        ("naive (whole canvas, tiny-skia PNG)", &naive),
        ("whole render (server encoder)", &whole),
        ("incremental render", &fast),
    ] {
        println!(
            "{:<40} {:>9.1} {:>9.1} {:>11} {:>7.2}x {:>7.3}x",
            label,
            ms(r.p(0.5)),
            ms(r.p(0.9)),
            r.size_p50(),
            r.p(0.5).as_secs_f64() / base.as_secs_f64(),
            r.size_p50() as f64 / naive.size_p50() as f64,
        );
    }
    println!(
        "first miss (renders whole, starts the base build): {:.1} ms; \
         second (waits for the base): {:.1} ms",
        ms(first_time),
        ms(second_time)
    );
}
