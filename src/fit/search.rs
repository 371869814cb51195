//! Line breaking and the ellipsis cut in a few measurements each.
//!
//! Both ask one question many times: how many words (or graphemes) fit on
//! this line? Measuring every candidate in turn costs a measurement per
//! word and characters measured quadratic in the text's length. The
//! answer is found instead by a galloping search around a guess taken from
//! the text's mean character width: a line holds roughly as many
//! characters as the box is wide, so a search typically measures two or
//! three candidates of about one line each, and never more than twice the
//! logarithm of the line's length. Each candidate is still measured whole,
//! as the renderer will draw it alone: a line cut out of a longer shaping
//! is not what is drawn (bidi reordering, contextual forms, kerning at the
//! cut), so estimates only steer the search and never decide a line.
//!
//! The search assumes a line's width grows with what it holds, as the old
//! word-by-word scan did in stopping at the first candidate too wide; it
//! finds the same break.

use unicode_segmentation::UnicodeSegmentation;

use super::meter::Meter;
use super::{inside, tall_enough, FitError, FitSpec, Ink};

/// The largest `n` in `1..=max` for which `fits(n)` holds, when `fits` holds
/// up to some `n` and not beyond; `None` when `fits(1)` fails. The search
/// starts at `guess` and gallops away from it.
pub(super) fn longest<F>(max: usize, guess: usize, mut fits: F) -> Result<Option<usize>, FitError>
where
    F: FnMut(usize) -> Result<bool, FitError>,
{
    if max == 0 {
        return Ok(None);
    }
    let guess = guess.clamp(1, max);
    // `lo` fits (0: nothing known to), `hi` does not (max + 1: none known).
    let (mut lo, mut hi) = (0, max + 1);
    let mut step = 1;
    if fits(guess)? {
        lo = guess;
        while lo < max {
            let probe = (lo + step).min(max);
            if fits(probe)? {
                lo = probe;
                step *= 2;
            } else {
                hi = probe;
                break;
            }
        }
    } else {
        hi = guess;
        while hi > 1 {
            let probe = hi.saturating_sub(step).max(1);
            if fits(probe)? {
                lo = probe;
                break;
            }
            hi = probe;
            step *= 2;
        }
        if lo == 0 {
            return Ok(None);
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Some(lo))
}

/// How many of `words` make a line of about `chars` characters (at least
/// one).
fn words_in(words: &[&str], chars: f32) -> usize {
    let mut used = 0usize;
    for (n, word) in words.iter().enumerate() {
        used += word.chars().count() + usize::from(n > 0);
        if used as f32 > chars {
            return n.max(1);
        }
    }
    words.len()
}

/// How a candidate line is measured: scaled from the template's size (the
/// size search) or for real at the size (the ellipsis cut).
#[derive(Clone, Copy)]
enum How {
    Scaled,
    Real,
}

fn ink<M: FnMut(&str, f32) -> Option<Ink>>(
    meter: &mut Meter<'_, M>,
    how: How,
    line: &str,
    size: f32,
) -> Result<Option<Ink>, FitError> {
    match how {
        How::Scaled => meter.scaled(line, size),
        How::Real => meter.real(line, size),
    }
}

/// The longest run of `words` from the start that fits one line at `size`,
/// in words; `None` when even the first word does not fit.
fn fill_line<M: FnMut(&str, f32) -> Option<Ink>>(
    spec: &FitSpec,
    words: &[&str],
    capacity: f32,
    size: f32,
    how: How,
    meter: &mut Meter<'_, M>,
) -> Result<Option<usize>, FitError> {
    longest(words.len(), words_in(words, capacity), |n| {
        Ok(inside(spec, ink(meter, how, &words[..n].join(" "), size)?))
    })
}

/// About how many characters of `text` one line of the box holds at
/// `size`; unbounded when the text has no measurable width.
fn capacity<M: FnMut(&str, f32) -> Option<Ink>>(
    spec: &FitSpec,
    text: &str,
    size: f32,
    meter: &mut Meter<'_, M>,
) -> Result<f32, FitError> {
    Ok(match meter.char_width(text, size)? {
        Some(w) => (spec.right - spec.left) / w,
        None => f32::INFINITY,
    })
}

/// Breaks `text` into lines at `size`, or `None` when it needs more lines
/// than allowed or a line is too wide.
pub(super) fn layout<M: FnMut(&str, f32) -> Option<Ink>>(
    spec: &FitSpec,
    text: &str,
    size: f32,
    meter: &mut Meter<'_, M>,
) -> Result<Option<Vec<String>>, FitError> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        if !spec.wrap {
            if !inside(spec, meter.scaled(paragraph, size)?) {
                return Ok(None);
            }
            lines.push(paragraph.to_owned());
        } else {
            let words: Vec<&str> = paragraph.split(' ').filter(|w| !w.is_empty()).collect();
            if words.is_empty() {
                lines.push(String::new());
            } else if lines.len() >= spec.max_lines {
                return Ok(None);
            }
            let capacity = if words.len() > 1 {
                capacity(spec, paragraph, size, meter)?
            } else {
                f32::INFINITY
            };
            let mut rest = words.as_slice();
            while !rest.is_empty() {
                let Some(n) = fill_line(spec, rest, capacity, size, How::Scaled, meter)? else {
                    return Ok(None);
                };
                lines.push(rest[..n].join(" "));
                rest = &rest[n..];
                if !rest.is_empty() && lines.len() >= spec.max_lines {
                    return Ok(None);
                }
            }
        }
        if lines.len() > spec.max_lines {
            return Ok(None);
        }
    }
    Ok(tall_enough(spec, lines.len(), size).then_some(lines))
}

/// The lines at `size` with the last allowed one cut to fit with `…`.
pub(super) fn cut<M: FnMut(&str, f32) -> Option<Ink>>(
    spec: &FitSpec,
    text: &str,
    size: f32,
    meter: &mut Meter<'_, M>,
) -> Result<Vec<String>, FitError> {
    let mut lines: Vec<String> = Vec::new();
    let flat = text.replace('\n', " ");
    let words: Vec<&str> = if spec.wrap {
        flat.split(' ').filter(|w| !w.is_empty()).collect()
    } else {
        vec![flat.as_str()]
    };
    let capacity = capacity(spec, &flat, size, meter)?;
    let mut rest = words.as_slice();
    while lines.len() + 1 < spec.max_lines && !rest.is_empty() {
        let Some(taken) = fill_line(spec, rest, capacity, size, How::Real, meter)? else {
            break;
        };
        lines.push(rest[..taken].join(" "));
        rest = &rest[taken..];
    }
    if !tall_enough(spec, lines.len() + 1, size) {
        return Err(FitError::DoesNotFit);
    }
    let last = rest.join(" ");
    let graphemes: Vec<&str> = last.graphemes(true).collect();
    let candidate = |keep: usize| format!("{}…", graphemes[..keep].concat().trim_end());
    // `n` counts the candidates from the bare `…` (n = 1) to the whole
    // rest with `…` (n = graphemes + 1).
    let guess = (capacity.min(graphemes.len() as f32 + 1.0)) as usize;
    let found = longest(graphemes.len() + 1, guess, |n| {
        Ok(inside(spec, meter.real(&candidate(n - 1), size)?))
    })?;
    match found {
        Some(n) => {
            lines.push(candidate(n - 1));
            Ok(lines)
        }
        None => Err(FitError::Unmeasurable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer of `longest` for a threshold `t` from every guess, and
    /// the most probes any guess took.
    fn search(max: usize, t: usize) -> (Vec<Option<usize>>, usize) {
        let mut most = 0;
        let answers = (0..=max + 1)
            .map(|guess| {
                let mut probes = 0;
                let found = longest(max, guess, |n| {
                    probes += 1;
                    Ok(n <= t)
                })
                .unwrap();
                most = most.max(probes);
                found
            })
            .collect();
        (answers, most)
    }

    #[test]
    fn the_search_finds_the_last_that_fits_from_any_guess() {
        for max in [1, 2, 3, 10, 100] {
            for t in 0..=max + 1 {
                let want = (t >= 1).then_some(t.min(max));
                let (answers, _) = search(max, t);
                assert!(answers.iter().all(|a| *a == want), "{max} {t}: {answers:?}");
            }
        }
    }

    #[test]
    fn the_search_takes_logarithmically_many_probes() {
        let (_, probes) = search(1000, 437);
        assert!(probes <= 2 * 11 + 1, "{probes}");
        // A right guess costs two probes: it fits, the next does not.
        let mut probes = 0;
        longest(1000, 437, |n| {
            probes += 1;
            Ok(n <= 437)
        })
        .unwrap();
        assert_eq!(probes, 2);
    }

    #[test]
    fn a_guess_in_characters_becomes_whole_words() {
        let words = ["Ada", "King", "Lovelace"];
        assert_eq!(words_in(&words, 0.0), 1);
        assert_eq!(words_in(&words, 8.0), 2);
        assert_eq!(words_in(&words, 100.0), 3);
    }
}
