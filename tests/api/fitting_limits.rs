//! Bounded work: long fitted text is laid out in a few measurements or
//! refused, a render past its deadline stops and frees its slot, waiting
//! for a slot counts against the deadline, and a key that keeps failing is
//! not rendered again every `failure_ttl`.

use serde_json::json;

use crate::helpers::*;

/// Fitted layers 800 units wide at 100 px, down to 20 px, cut with `…`.
const ELLIPSIS: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="400"><rect id="box" x="100" y="100" width="800" height="200" fill="none"/><text id="name" x="500" y="250" text-anchor="middle" font-family="serif" font-size="100" data-fit="shrink" data-box="box" data-min-size="20" data-overflow="ellipsis">Jane Doe</text><text id="course" x="500" y="250" text-anchor="middle" font-family="serif" font-size="100" data-fit="wrap" data-box="box" data-max-lines="2" data-min-size="20" data-overflow="ellipsis">Course</text></svg>"#;

/// Two layers wrapped on up to 20 lines from 100 px down to 1 px: a text
/// whose last word never fits makes the size search lay out many lines at
/// every size.
const MANY_LINES: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="400"><text id="a" x="500" y="250" text-anchor="middle" font-family="serif" font-size="100" data-fit="wrap" data-width="800" data-max-lines="20" data-min-size="1">A</text><text id="b" x="500" y="350" text-anchor="middle" font-family="serif" font-size="100" data-fit="wrap" data-width="800" data-max-lines="20" data-min-size="1">B</text></svg>"#;

/// A render that takes a few milliseconds.
const SMALL: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100" fill="#eee"/><text id="t" x="10" y="50">x</text></svg>"##;

/// A render deadline well under what the never-fitting texts below take
/// to reach fitting's bound (about 180 ms here), and well over what the
/// small template takes to draw.
const SHORT_DEADLINE_MS: u64 = 50;

const SCRIPTS: [&str; 9] = [
    "Ada",
    "ليلى",
    "דוד",
    "अनन्या",
    "สมชาย",
    "王小明",
    "김민준",
    "Ελένη",
    "🎓",
];

/// `n` characters of names in nine scripts.
fn mixed(n: usize) -> String {
    SCRIPTS
        .join(" ")
        .chars()
        .chain([' '])
        .cycle()
        .take(n)
        .collect()
}

/// 1,000 characters: distinct words in `scripts` (so no two lines are the
/// same text), then one word too long for the box at any size above 4 px.
fn never_fits(scripts: &[&str]) -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.chars().count() < 790 {
        text.push_str(&format!("{}{i} ", scripts[i % scripts.len()]));
        i += 1;
    }
    let rest = 1000 - text.chars().count();
    text + &"W".repeat(rest)
}

async fn running(app: &TestApp) -> u64 {
    app.health().await["renders_running"].as_u64().unwrap()
}

// How the cost grows with the text is counted in
// `fit::tests::the_measuring_grows_no_faster_than_the_text`; a deadline
// here would make the test depend on the machine's load.
#[tokio::test]
async fn a_thousand_characters_are_cut_or_wrapped_into_their_box() {
    let app = spawn_with(|c| c.render_concurrency = 1).await;
    app.write_template(USER, "ellipsis.svg", ELLIPSIS);
    app.write_template(USER, "small.svg", SMALL);
    let text = mixed(1000);
    for (layer, fit) in [
        ("name", "name=20px/1 line/ellipsis"),
        ("course", "course=20px/2 lines/ellipsis"),
    ] {
        let mods = json!([{ "name": layer, "text": text }]);
        let response = app
            .get(&signed_url(&app, "ellipsis", "png", &mods, &[]))
            .await;
        assert_eq!(response.status(), 200, "{layer}: {}", error_of(&response));
        assert_eq!(response.headers()["x-stencil-fit"], fit);
    }
    let small = app.get(&app.reference_url("small", &[])).await;
    assert_eq!(small.status(), 200, "{}", error_of(&small));
}

#[tokio::test]
async fn a_layer_that_needs_too_much_measuring_is_refused_with_a_reason() {
    let app = spawn_app().await;
    app.write_template(USER, "lines.svg", MANY_LINES);
    let mods = json!([{ "name": "a", "text": never_fits(&["n"]) }]);
    let response = app.get(&signed_url(&app, "lines", "png", &mods, &[])).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        error_of(&response),
        "Text does not fit: a (laying it out takes more measuring than a layer is allowed)"
    );
}

#[tokio::test]
async fn a_render_past_its_deadline_stops_and_the_next_gets_its_slot() {
    let app = spawn_with(|c| {
        c.render_concurrency = 1;
        c.render_timeout_ms = SHORT_DEADLINE_MS;
    })
    .await;
    app.write_template(USER, "lines.svg", MANY_LINES);
    app.write_template(USER, "small.svg", SMALL);
    // The small template prepared once, so its render below is the few
    // milliseconds of drawing it.
    let warm = app.get(&app.reference_url("small", &[("t", "warm")])).await;
    assert_eq!(warm.status(), 200, "{}", error_of(&warm));
    // Measuring up to fitting's bound for the layer (about 0.2 s on this
    // machine's kind, more under load): several deadlines.
    let mods = json!([
        { "name": "a", "text": never_fits(&SCRIPTS) },
        { "name": "b", "text": never_fits(&SCRIPTS[1..]) }
    ]);
    let slow = app.get(&signed_url(&app, "lines", "png", &mods, &[])).await;
    assert_eq!(slow.status(), 500, "{}", error_of(&slow));
    // The small render queues behind the slow one's slot, and its own
    // deadline counts from then: it is answered only if that slot is
    // freed at once, not when the slow render's work would have ended.
    let small = app.get(&app.reference_url("small", &[])).await;
    assert_eq!(small.status(), 200, "{}", error_of(&small));
    assert_eq!(running(&app).await, 0);
}

#[tokio::test]
async fn a_render_that_waits_out_its_deadline_for_a_slot_is_busy_and_never_starts() {
    let app = spawn_with(|c| {
        c.render_concurrency = 1;
        c.render_timeout_ms = 500;
    })
    .await;
    app.write_template(USER, "slow.svg", slow_svg());
    app.write_template(USER, "small.svg", SMALL);
    let url = app.reference_url("slow", &[]);
    let client = app.client.clone();
    // One long paint, which nothing can interrupt: it keeps the slot for
    // seconds after its own deadline.
    let slow = tokio::spawn(async move { client.get(&url).send().await.unwrap().status() });
    app.until_rendering().await;
    let started = app.renders_started().await;
    let small = app.get(&app.reference_url("small", &[])).await;
    assert_eq!(small.status(), 503, "{}", error_of(&small));
    assert_eq!(error_of(&small), "Server busy");
    assert_eq!(app.renders_started().await, started, "the small render ran");
    assert_eq!(slow.await.unwrap(), 500);
}

/// Asks for `url` (answered `status`) until a render starts for it: its
/// remembered failure expired. Returns the new `renders_started`.
async fn until_rendered_again(app: &TestApp, url: &str, status: u16, started: u64) -> u64 {
    loop {
        assert_eq!(app.get(url).await.status(), status);
        let now = app.renders_started().await;
        if now > started {
            return now;
        }
    }
}

#[tokio::test]
async fn a_key_that_keeps_failing_is_remembered_longer_each_time() {
    let app = spawn_with(|c| {
        c.failure_ttl_ms = 500;
        c.render_timeout_ms = SHORT_DEADLINE_MS;
    })
    .await;
    app.write_template(USER, "lines.svg", MANY_LINES);
    // Measuring to fitting's bound takes several deadlines: it runs to
    // its deadline every time.
    let slow = signed_url(
        &app,
        "lines",
        "png",
        &json!([
            { "name": "a", "text": never_fits(&SCRIPTS) },
            { "name": "b", "text": never_fits(&SCRIPTS[1..]) }
        ]),
        &[],
    );
    // A second failing URL serves as the clock: its first failure is
    // remembered for `failure_ttl` exactly.
    let clock = app.reference_url(CERT, &[("text_candidate", "\u{E000}")]);

    let mut started = app.renders_started().await;
    assert_eq!(app.get(&slow).await.status(), 500);
    started = until_rendered_again(&app, &slow, 500, started + 1).await;
    // Failed twice in a row: remembered for 2 × failure_ttl from now.
    assert_eq!(app.get(&clock).await.status(), 422);
    started = until_rendered_again(&app, &clock, 422, started + 1).await;
    // A whole `failure_ttl` has passed since the second failure.
    assert_eq!(app.get(&slow).await.status(), 500);
    assert_eq!(
        app.renders_started().await,
        started,
        "the failing key was rendered again within its backoff"
    );
}
