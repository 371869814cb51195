//! Drawing over a template: markup appended as the root's last child, so
//! it lies over everything the template draws — how a certificate's
//! status stamp is put on it.

use super::{Applied, Template};

impl Template {
    /// The root's user space, `[x, y, width, height]`: where markup drawn
    /// over the whole template takes its coordinates.
    pub fn user_box(&self) -> [f32; 4] {
        self.user_box
    }

    /// `applied`'s SVG with `markup` as the root's last child; `None`
    /// for an empty root (`<svg …/>`), which has no place for it. Edits
    /// only replace elements inside the root, so the root's end tag is
    /// as far from the end of `applied` as from the end of the source.
    pub fn with_overlay(&self, applied: &Applied, markup: &str) -> Option<String> {
        let from_end = self.source.len() - self.root_close?;
        let at = applied.svg.len().checked_sub(from_end)?;
        if !applied.svg[at..].starts_with("</") {
            return None;
        }
        let mut out = String::with_capacity(applied.svg.len() + markup.len());
        out.push_str(&applied.svg[..at]);
        out.push_str(markup);
        out.push_str(&applied.svg[at..]);
        Some(out)
    }
}

/// A `viewBox` value's four numbers, when it has them and a positive
/// size.
pub(super) fn view_box(value: Option<&str>) -> Option<[f32; 4]> {
    let numbers: Vec<f32> = value?
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|part| !part.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match numbers[..] {
        [x, y, w, h] if w > 0.0 && h > 0.0 && [x, y, w, h].iter().all(|n| n.is_finite()) => {
            Some([x, y, w, h])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_boxes_take_four_numbers_and_a_positive_size() {
        assert_eq!(view_box(Some("0 0 20 10")), Some([0.0, 0.0, 20.0, 10.0]));
        assert_eq!(view_box(Some("-5,5, 20 10")), Some([-5.0, 5.0, 20.0, 10.0]));
        assert_eq!(view_box(Some("0 0 0 10")), None);
        assert_eq!(view_box(Some("0 0 10")), None);
        assert_eq!(view_box(Some("a b c d")), None);
        assert_eq!(view_box(None), None);
    }
}
