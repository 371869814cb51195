//! What fitting may spend. Every measurement goes through a `Meter`, which
//! checks the running job's deadline first and counts the measurement and
//! its characters against the layer's budget and the request's, so a text
//! can neither outlast its deadline nor cost more than a bounded amount of
//! shaping, whatever the template and the text.

use std::collections::HashMap;

use super::{FitError, Ink};
use crate::deadline;

/// Measurements, and characters measured, still allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    measurements: u32,
    chars: u64,
}

impl Allowance {
    /// One fitted layer. A measurement costs a fixed amount (parsing and
    /// laying out a one-line document, 1–3 ms) plus shaping its
    /// characters. A layer of `max_text_chars` (1000) characters needs
    /// 20–170 measurements and 2,000–14,000 characters, wrapped on up to
    /// 20 lines, mixed scripts included; this leaves more than twice that,
    /// and bounds a layer to about half a second of measuring.
    pub const LAYER: Allowance = Allowance {
        measurements: 400,
        chars: 100_000,
    };

    /// One request, over all its fitted layers: about 1–2 s of measuring
    /// on one core at most, well inside the default render deadline.
    pub const REQUEST: Allowance = Allowance {
        measurements: 1_000,
        chars: 250_000,
    };

    /// No bound, for callers outside a request (tests, tools).
    pub const UNLIMITED: Allowance = Allowance {
        measurements: u32::MAX,
        chars: u64::MAX,
    };

    fn covers(&self, chars: u64) -> bool {
        self.measurements > 0 && self.chars >= chars
    }

    fn spend(&mut self, chars: u64) {
        self.measurements -= 1;
        self.chars -= chars;
    }
}

/// Measures lines for one layer: real measurements at a size, and
/// measurements at the template's size (cached per line) scaled to
/// another, which the size search compares with the box.
pub(super) struct Meter<'a, M> {
    measure: M,
    /// The template's font size: where cached measurements are taken.
    base: f32,
    at_base: HashMap<String, Option<Ink>>,
    layer: Allowance,
    request: &'a mut Allowance,
}

impl<'a, M: FnMut(&str, f32) -> Option<Ink>> Meter<'a, M> {
    pub(super) fn new(measure: M, base: f32, request: &'a mut Allowance) -> Self {
        Meter {
            measure,
            base,
            at_base: HashMap::new(),
            layer: Allowance::LAYER,
            request,
        }
    }

    /// The ink of `line` at `size`, as the renderer will draw it.
    pub(super) fn real(&mut self, line: &str, size: f32) -> Result<Option<Ink>, FitError> {
        deadline::check().map_err(|_| FitError::Expired)?;
        let chars = line.chars().count() as u64;
        if !self.layer.covers(chars) {
            return Err(FitError::TooMuchWork("layer"));
        }
        if !self.request.covers(chars) {
            return Err(FitError::TooMuchWork("request"));
        }
        self.layer.spend(chars);
        self.request.spend(chars);
        Ok((self.measure)(line, size))
    }

    /// The ink of `line` at `size`, estimated from its measurement at the
    /// template's size: unhinted outlines scale linearly with the size.
    pub(super) fn scaled(&mut self, line: &str, size: f32) -> Result<Option<Ink>, FitError> {
        let ink = match self.at_base.get(line) {
            Some(ink) => *ink,
            None => {
                let ink = self.real(line, self.base)?;
                self.at_base.insert(line.to_owned(), ink);
                ink
            }
        };
        let k = size / self.base;
        Ok(ink.map(|(l, r)| (l * k, r * k)))
    }

    /// The mean width of a character of `text` at `size`, from one
    /// (cached) measurement of all of it: where a search for a line break
    /// starts, so it needs a few measurements rather than one per word.
    pub(super) fn char_width(&mut self, text: &str, size: f32) -> Result<Option<f32>, FitError> {
        let chars = text.chars().count();
        let ink = self.scaled(text, size)?;
        Ok(ink
            .map(|(l, r)| (r - l) / chars.max(1) as f32)
            .filter(|w| *w > 0.0 && w.is_finite()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(line: &str, size: f32) -> Option<Ink> {
        Some((0.0, line.chars().count() as f32 * size * 0.5))
    }

    #[test]
    fn lines_measured_at_the_template_size_are_measured_once() {
        let mut request = Allowance::UNLIMITED;
        let mut calls = 0;
        let mut meter = Meter::new(
            |l: &str, s: f32| {
                calls += 1;
                fake(l, s)
            },
            20.0,
            &mut request,
        );
        assert_eq!(meter.scaled("abcd", 10.0), Ok(Some((0.0, 20.0))));
        assert_eq!(meter.scaled("abcd", 40.0), Ok(Some((0.0, 80.0))));
        assert_eq!(meter.char_width("abcd", 20.0), Ok(Some(10.0)));
        drop(meter);
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_layer_and_a_request_each_have_a_bound() {
        let mut request = Allowance::UNLIMITED;
        let mut meter = Meter::new(fake, 20.0, &mut request);
        for _ in 0..Allowance::LAYER.measurements {
            assert!(meter.real("a", 20.0).is_ok());
        }
        assert_eq!(meter.real("a", 20.0), Err(FitError::TooMuchWork("layer")));

        let mut request = Allowance {
            measurements: 3,
            chars: 1000,
        };
        for _ in 0..2 {
            let mut meter = Meter::new(fake, 20.0, &mut request);
            assert!(meter.real("a", 20.0).is_ok());
        }
        let mut meter = Meter::new(fake, 20.0, &mut request);
        assert!(meter.real("a", 20.0).is_ok());
        assert_eq!(meter.real("a", 20.0), Err(FitError::TooMuchWork("request")));
        let mut huge = Allowance::UNLIMITED;
        let mut meter = Meter::new(fake, 20.0, &mut huge);
        assert_eq!(
            meter.real(&"a".repeat(150_000), 20.0),
            Err(FitError::TooMuchWork("layer"))
        );
    }

    #[test]
    fn a_passed_deadline_stops_measuring() {
        let past = crate::deadline::Deadline::new(std::time::Instant::now());
        let mut request = Allowance::UNLIMITED;
        let result = crate::deadline::within(past, || {
            Meter::new(fake, 20.0, &mut request).real("a", 20.0)
        });
        assert_eq!(result, Err(FitError::Expired));
    }
}
