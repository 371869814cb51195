//! Text that fits its box: shrink, wrap, align, and what to do when even
//! the smallest size is too big (an ellipsis, or a refusal).
//!
//! resvg lays out one line where it is told to and never wraps, so the
//! layout of a fitted layer is decided here, measuring shaped text with the
//! renderer's own fonts (see `Renderer::measure`). The search assumes ink
//! width grows linearly with the font size (true of unhinted outlines) and
//! then checks the chosen size with a real measurement, so a template with
//! letter-spacing still never overflows.
//!
//! Line breaks and the ellipsis cut are found by a search that measures a
//! few candidates of about a line each (`search`), so the work grows with
//! the box, not with the square of the text; every measurement is counted
//! against a bound per layer and per request and checks the render's
//! deadline first (`meter`).
//!
//! Declared in the template, on the `<text>` element:
//!
//! | attribute | meaning | default |
//! |---|---|---|
//! | `data-fit` | `shrink` (one line per `\n`) or `wrap` (break at spaces) | — (no fitting) |
//! | `data-box` | `id` of a `<rect>` in the same coordinate system: the box | — |
//! | `data-width` | box width, placed by `text-anchor` around the text's `x` | — |
//! | `data-min-size` | smallest font size, px | half the template's size |
//! | `data-max-lines` | most lines | 1 for `shrink`, 2 for `wrap` |
//! | `data-line-height` | line advance, in font sizes | 1.2 |
//! | `data-align` | `start`, `middle` or `end` inside the box | the text's `text-anchor` |
//! | `data-overflow` | `error` (refuse) or `ellipsis` (cut with …) | `error` |

mod meter;
mod search;

pub use meter::Allowance;
use meter::Meter;

/// How a fitted layer behaves, read from its attributes once per template
/// version.
#[derive(Debug, Clone, PartialEq)]
pub struct FitSpec {
    pub wrap: bool,
    /// Left and right edge of the box, in the text's user units.
    pub left: f32,
    pub right: f32,
    /// Top of the box, when it is a rect: lines above the baseline must
    /// stay below it.
    pub top: Option<f32>,
    pub size: f32,
    pub min_size: f32,
    pub max_lines: usize,
    pub line_height: f32,
    pub align: Align,
    pub ellipsis: bool,
    /// The last line's baseline: the template's `y`.
    pub baseline: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Start,
    Middle,
    End,
}

impl Align {
    pub fn parse(raw: &str) -> Option<Align> {
        match raw {
            "start" => Some(Align::Start),
            "middle" => Some(Align::Middle),
            "end" => Some(Align::End),
            _ => None,
        }
    }

    /// The `text-anchor` value placing text this way.
    pub fn anchor(self) -> &'static str {
        match self {
            Align::Start => "start",
            Align::Middle => "middle",
            Align::End => "end",
        }
    }
}

/// The ink of a line relative to its anchor point, at one font size:
/// `(left, right)`, both in user units.
pub type Ink = (f32, f32);

/// The layout chosen for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub size: f32,
    pub lines: Vec<String>,
    pub ellipsis: bool,
    /// The anchor `x` of every line.
    pub x: f32,
    /// The first line's baseline; later lines follow one line height apart.
    pub first_baseline: f32,
}

impl Fitted {
    /// What `x-stencil-fit` reports for the layer.
    pub fn report(&self, layer: &str) -> String {
        let n = self.lines.len();
        let lines = if n == 1 {
            "1 line".into()
        } else {
            format!("{n} lines")
        };
        let size = (self.size * 10.0).round() / 10.0;
        let cut = if self.ellipsis { "/ellipsis" } else { "" };
        format!("{layer}={size}px/{lines}{cut}")
    }
}

/// Why a text could not be laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FitError {
    /// Even at the smallest size it overflows, and cutting is not allowed.
    DoesNotFit,
    /// A line could not be measured (the text is not renderable).
    Unmeasurable,
    /// Laying it out would take more measuring than a `layer` or a
    /// `request` is allowed (see `Allowance`).
    TooMuchWork(&'static str),
    /// The render's deadline passed while it was being laid out.
    Expired,
}

/// Lays out `text` by `spec`. `measure(line, size)` gives the ink of one
/// line at a size, or `None` when it has no ink (spaces only).
pub fn fit<M>(spec: &FitSpec, text: &str, measure: M) -> Result<Fitted, FitError>
where
    M: FnMut(&str, f32) -> Option<Ink>,
{
    let mut unlimited = Allowance::UNLIMITED;
    fit_within(spec, text, &mut unlimited, measure)
}

/// `fit`, spending measurements from `request` (and at most a layer's
/// `Allowance::LAYER`), and stopping when the running job's deadline passes.
pub fn fit_within<M>(
    spec: &FitSpec,
    text: &str,
    request: &mut Allowance,
    measure: M,
) -> Result<Fitted, FitError>
where
    M: FnMut(&str, f32) -> Option<Ink>,
{
    let width = spec.right - spec.left;
    if width <= 0.0 || spec.min_size <= 0.0 {
        return Err(FitError::DoesNotFit);
    }
    let mut meter = Meter::new(measure, spec.size, request);
    let estimate = |size: f32, meter: &mut Meter<'_, M>| search::layout(spec, text, size, meter);

    // Step down until something fits (sizes fall geometrically to the
    // minimum, so this ends), then refine between the last two steps.
    let mut best = None;
    let mut size = spec.size;
    loop {
        if let Some(lines) = estimate(size, &mut meter)? {
            best = Some((size, lines));
            break;
        }
        if size <= spec.min_size {
            break;
        }
        size = (size * 0.93).max(spec.min_size);
    }
    if let Some((found, _)) = best.clone() {
        let (mut lo, mut hi) = (found, (found / 0.93).min(spec.size));
        for _ in 0..8 {
            let mid = (lo + hi) / 2.0;
            match estimate(mid, &mut meter)? {
                Some(lines) => {
                    lo = mid;
                    best = Some((mid, lines));
                }
                None => hi = mid,
            }
        }
    }
    // Confirm with real measurements at the chosen size.
    if let Some((mut size, mut lines)) = best {
        for _ in 0..6 {
            if lines_fit(spec, &lines, size, &mut meter)? {
                return Ok(place(spec, size, lines, false));
            }
            size *= 0.98;
            if size < spec.min_size {
                break;
            }
            match estimate(size, &mut meter)? {
                Some(l) => lines = l,
                None => break,
            }
        }
    }
    if !spec.ellipsis {
        return Err(FitError::DoesNotFit);
    }
    let size = spec.min_size;
    let lines = search::cut(spec, text, size, &mut meter)?;
    Ok(place(spec, size, lines, true))
}

/// Where lines are anchored: the box edge or centre the alignment names.
fn anchor_x(spec: &FitSpec) -> f32 {
    match spec.align {
        Align::Start => spec.left,
        Align::Middle => (spec.left + spec.right) / 2.0,
        Align::End => spec.right,
    }
}

fn place(spec: &FitSpec, size: f32, lines: Vec<String>, ellipsis: bool) -> Fitted {
    let up = (lines.len().saturating_sub(1)) as f32 * spec.line_height * size;
    Fitted {
        size,
        lines,
        ellipsis,
        x: anchor_x(spec),
        first_baseline: spec.baseline - up,
    }
}

/// True when a line with ink `ink` (relative to its anchor) lies inside
/// the box.
fn inside(spec: &FitSpec, ink: Option<Ink>) -> bool {
    let Some((l, r)) = ink else { return true };
    let x = anchor_x(spec);
    x + l >= spec.left - 0.01 && x + r <= spec.right + 0.01
}

/// True when `n` lines at `size` stay below the box's top.
fn tall_enough(spec: &FitSpec, n: usize, size: f32) -> bool {
    match spec.top {
        None => true,
        Some(top) => {
            spec.baseline - n.saturating_sub(1) as f32 * spec.line_height * size - size * 0.9 >= top
        }
    }
}

/// The chosen layout, measured for real: what the renderer will draw.
fn lines_fit<M: FnMut(&str, f32) -> Option<Ink>>(
    spec: &FitSpec,
    lines: &[String],
    size: f32,
    meter: &mut Meter<'_, M>,
) -> Result<bool, FitError> {
    if !tall_enough(spec, lines.len(), size) {
        return Ok(false);
    }
    for line in lines {
        if !inside(spec, meter.real(line, size)?) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every character is 0.5 em wide; ink starts at the anchor (start),
    /// is centred on it (middle) or ends at it (end).
    fn fake(align: Align) -> impl FnMut(&str, f32) -> Option<Ink> {
        move |line: &str, size: f32| {
            let w = line.chars().count() as f32 * size * 0.5;
            (w > 0.0).then(|| match align {
                Align::Start => (0.0, w),
                Align::Middle => (-w / 2.0, w / 2.0),
                Align::End => (-w, 0.0),
            })
        }
    }

    fn spec(wrap: bool, ellipsis: bool) -> FitSpec {
        FitSpec {
            wrap,
            left: 0.0,
            right: 100.0,
            top: None,
            size: 20.0,
            min_size: 10.0,
            max_lines: if wrap { 2 } else { 1 },
            line_height: 1.2,
            align: Align::Middle,
            ellipsis,
            baseline: 50.0,
        }
    }

    #[test]
    fn short_text_keeps_the_template_size() {
        let f = fit(&spec(false, false), "Ada", fake(Align::Middle)).unwrap();
        assert_eq!((f.size, f.lines.len(), f.x), (20.0, 1, 50.0));
        assert_eq!(f.report("t"), "t=20px/1 line");
    }

    #[test]
    fn long_text_shrinks_to_the_largest_size_that_fits() {
        // 14 chars * 0.5 em = 7 em; 100 units wide → at most 14.28 px.
        let f = fit(&spec(false, false), "Ada Lovelace X", fake(Align::Middle)).unwrap();
        let widest = 100.0 / 7.0;
        assert!(
            f.size <= widest + 0.01 && f.size > widest * 0.95,
            "{}",
            f.size
        );
    }

    #[test]
    fn wrap_breaks_at_spaces_and_raises_earlier_lines() {
        let f = fit(&spec(true, false), "Ada King Lovelace", fake(Align::Middle)).unwrap();
        assert_eq!(f.lines, ["Ada King", "Lovelace"]);
        assert_eq!(f.size, 20.0);
        assert!((f.first_baseline - (50.0 - 24.0)).abs() < 1e-4);
    }

    #[test]
    fn overflow_is_an_error_or_an_ellipsis_as_declared() {
        let long = "W".repeat(40);
        assert_eq!(
            fit(&spec(false, false), &long, fake(Align::Middle)),
            Err(FitError::DoesNotFit)
        );
        let f = fit(&spec(false, true), &long, fake(Align::Middle)).unwrap();
        assert!(f.ellipsis && f.lines[0].ends_with('…'));
        assert_eq!(f.size, 10.0);
        // 20 chars at 10 px fill the 100 units exactly.
        assert_eq!(f.lines[0].chars().count(), 20);
    }

    #[test]
    fn a_box_top_limits_the_lines() {
        let mut s = spec(true, false);
        s.top = Some(20.0);
        // Two lines at 20 px would reach 50 - 24 - 18 = 8 < 20.
        let f = fit(&s, "Augusta Ada King Lovelace", fake(Align::Middle)).unwrap();
        assert!(f.size < 20.0);
        assert!(f.first_baseline - f.size * 0.9 >= 20.0);
    }

    /// Measurements and characters measured to fit `n` characters of
    /// distinct words.
    fn cost(spec: &FitSpec, n: usize) -> (usize, usize, Result<Fitted, FitError>) {
        let words: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
        let text: String = words.join(" ").chars().take(n).collect();
        let (mut calls, mut chars) = (0, 0);
        let mut inner = fake(Align::Middle);
        let result = fit(spec, &text, |line: &str, size: f32| {
            calls += 1;
            chars += line.chars().count();
            inner(line, size)
        });
        (calls, chars, result)
    }

    #[test]
    fn the_measuring_grows_no_faster_than_the_text() {
        for (wrap, ellipsis) in [(false, true), (true, true), (true, false)] {
            let spec = spec(wrap, ellipsis);
            let (calls_100, chars_100, _) = cost(&spec, 100);
            let (calls_1000, chars_1000, result) = cost(&spec, 1000);
            assert_eq!(result.is_ok(), ellipsis);
            let case = format!("wrap {wrap}, ellipsis {ellipsis}: {calls_100} measurements of {chars_100} characters for 100, {calls_1000} of {chars_1000} for 1000");
            // Ten times the text: about as many measurements, and at most
            // ten times the characters (the whole text is measured once).
            assert!(calls_1000 <= 2 * calls_100 + 8, "{case}");
            assert!(chars_1000 <= 10 * chars_100, "{case}");
        }
    }

    #[test]
    fn start_and_end_alignment_anchor_at_the_box_edges() {
        let mut s = spec(false, false);
        s.align = Align::End;
        assert_eq!(fit(&s, "Ada", fake(Align::End)).unwrap().x, 100.0);
        s.align = Align::Start;
        assert_eq!(fit(&s, "Ada", fake(Align::Start)).unwrap().x, 0.0);
    }
}
