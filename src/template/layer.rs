//! Reading a template's layers when it is prepared: a text layer's parts
//! (first `tspan`, closing tags, line position), boxes, and fitting
//! declarations.

use super::*;

pub(super) fn text_layer(
    source: &str,
    doc: &roxmltree::Document<'_>,
    tree: &usvg::Tree,
    node: roxmltree::Node<'_, '_>,
    name: &str,
) -> Result<TextLayer, TemplateError> {
    let mut text = TextLayer {
        tspan: None,
        close: format!("</{name}>"),
        line_x: String::new(),
        fit: None,
    };
    let mut x = node.attribute("x");
    if let Some(tspan) = node
        .descendants()
        .skip(1)
        .find(|n| n.is_element() && n.tag_name().name() == "tspan")
    {
        let tag = StartTag::of(source, tspan)?;
        text.close = format!("</{}>{}", tag.name(), text.close);
        text.tspan = Some(tag);
        x = tspan.attribute("x").or(x);
    }
    let first_x = x
        .and_then(|x| x.split([' ', ',', '\t', '\n']).find(|s| !s.is_empty()))
        .unwrap_or("0");
    escape_into(&mut text.line_x, first_x);
    if node.attribute("data-fit").is_some() {
        text.fit = Some(fit_spec(doc, tree, node)?);
    }
    Ok(text)
}

/// A length attribute in user units (a bare number or `px`), finite.
pub(super) fn px(node: roxmltree::Node<'_, '_>, name: &str) -> Option<f32> {
    node.attribute(name)
        .and_then(|v| v.trim().trim_end_matches("px").parse::<f32>().ok())
        .filter(|v| v.is_finite())
}

/// `x y width height` of an element that has a positive width and height.
pub(super) fn box_of(node: roxmltree::Node<'_, '_>) -> Option<[f32; 4]> {
    match (px(node, "width"), px(node, "height")) {
        (Some(w), Some(h)) if w > 0.0 && h > 0.0 => Some([
            px(node, "x").unwrap_or(0.0),
            px(node, "y").unwrap_or(0.0),
            w,
            h,
        ]),
        _ => None,
    }
}

/// Reads the `data-fit` attributes of a text layer (see `fit`), with the
/// font, size and position usvg resolved for it.
pub(super) fn fit_spec(
    doc: &roxmltree::Document<'_>,
    tree: &usvg::Tree,
    node: roxmltree::Node<'_, '_>,
) -> Result<(FitSpec, FontSpec), TemplateError> {
    let id = node.attribute("id").unwrap_or_default();
    let reject = |why: String| TemplateError::Rejected(format!("text layer `{id}`: {why}"));
    let wrap = match node.attribute("data-fit") {
        Some("shrink") => false,
        Some("wrap") => true,
        other => {
            return Err(reject(format!(
                "data-fit must be shrink or wrap, not {other:?}"
            )))
        }
    };
    let Some(usvg::Node::Text(text)) = tree.node_by_id(id) else {
        return Err(reject(
            "a fitted layer needs sample text in the template, to find its font".into(),
        ));
    };
    let (font, size) = FontSpec::of(text).ok_or_else(|| reject("no font resolved".into()))?;
    let chunk = &text.chunks()[0];
    let (x, baseline) = (chunk.x().unwrap_or(0.0), chunk.y().unwrap_or(0.0));
    let anchor = match chunk.anchor() {
        usvg::TextAnchor::Start => Align::Start,
        usvg::TextAnchor::Middle => Align::Middle,
        usvg::TextAnchor::End => Align::End,
    };
    let number = |name: &str, lo: f32, hi: f32| -> Result<Option<f32>, TemplateError> {
        match node.attribute(name) {
            None => Ok(None),
            Some(_) => px(node, name)
                .filter(|v| (lo..=hi).contains(v))
                .map(Some)
                .ok_or_else(|| reject(format!("{name} must be a number from {lo} to {hi}"))),
        }
    };
    let (left, right, top) = match (node.attribute("data-box"), number("data-width", 1.0, 1e6)?) {
        (Some(box_id), _) => {
            let rect = doc
                .descendants()
                .find(|n| n.attribute("id") == Some(box_id))
                .ok_or_else(|| {
                    reject(format!(
                        "data-box names `{box_id}`, which is not in the template"
                    ))
                })?;
            match box_of(rect) {
                Some([bx, by, w, _]) => (bx, bx + w, Some(by)),
                None => {
                    return Err(reject(format!(
                        "data-box `{box_id}` needs a width and a height"
                    )))
                }
            }
        }
        (None, Some(w)) => match anchor {
            Align::Start => (x, x + w, None),
            Align::Middle => (x - w / 2.0, x + w / 2.0, None),
            Align::End => (x - w, x, None),
        },
        (None, None) => return Err(reject("data-fit needs data-box or data-width".into())),
    };
    let align = match node.attribute("data-align") {
        None => anchor,
        Some(raw) => Align::parse(raw)
            .ok_or_else(|| reject("data-align must be start, middle or end".into()))?,
    };
    let ellipsis = match node.attribute("data-overflow") {
        None | Some("error") => false,
        Some("ellipsis") => true,
        Some(_) => return Err(reject("data-overflow must be error or ellipsis".into())),
    };
    let max_lines =
        number("data-max-lines", 1.0, 20.0)?.map_or(if wrap { 2 } else { 1 }, |n| n as usize);
    let spec = FitSpec {
        wrap,
        left,
        right,
        top,
        size,
        min_size: number("data-min-size", 1.0, 10_000.0)?
            .unwrap_or(size / 2.0)
            .min(size),
        max_lines,
        line_height: number("data-line-height", 0.5, 4.0)?.unwrap_or(1.2),
        align,
        ellipsis,
        baseline,
    };
    Ok((spec, font))
}
