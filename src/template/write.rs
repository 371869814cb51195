//! Writing edited layers into the output SVG: text (plain or fitted), QR
//! codes, and the `href` of an image layer, whose picture is checked here
//! against the layer's bound before any format is written.

use super::*;

pub(super) fn text_into(
    out: &mut String,
    layer: &Layer,
    t: &TextLayer,
    text: &str,
    fitted: Option<(&Fitted, &FitSpec)>,
    color: &str,
) {
    let Some((f, spec)) = fitted else {
        layer.tag.write(out, &[], color);
        if let Some(tspan) = &t.tspan {
            tspan.write(out, &[], color);
        }
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push_str("<tspan x=\"");
                out.push_str(&t.line_x);
                out.push_str("\" dy=\"1.2em\">");
            }
            escape_into(out, line);
            if i > 0 {
                out.push_str("</tspan>");
            }
        }
        out.push_str(&t.close);
        return;
    };
    let (x, y) = (f.x.to_string(), f.first_baseline.to_string());
    let mut style = format!("font-size:{}px;text-anchor:{}", f.size, spec.align.anchor());
    if !color.is_empty() {
        style.push(';');
        style.push_str(color);
    }
    let set = [("x", x.as_str()), ("y", y.as_str())];
    layer.tag.write(out, &set, &style);
    if let Some(tspan) = &t.tspan {
        tspan.write(out, &set, &style);
    }
    let advance = spec.line_height * f.size;
    for (i, line) in f.lines.iter().enumerate() {
        if i > 0 {
            out.push_str(&format!("<tspan x=\"{x}\" dy=\"{advance}\">"));
        }
        escape_into(out, line);
        if i > 0 {
            out.push_str("</tspan>");
        }
    }
    out.push_str(&t.close);
}

/// A QR code of `data` as vector paths filling the layer's box (square,
/// centred), with the standard four-module quiet zone in white.
pub(super) fn qr_into(
    out: &mut String,
    layer: &Layer,
    data: &str,
    color: Option<&str>,
) -> Result<(), RenderError> {
    let Some([x, y, w, h]) = layer.bbox else {
        return Ok(());
    };
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| RenderError::TooLarge(format!("QR code: {e}")))?;
    let n = code.width();
    let side = w.min(h);
    let module = side / (n + 8) as f32;
    let (ox, oy) = (
        x + (w - side) / 2.0 + 4.0 * module,
        y + (h - side) / 2.0 + 4.0 * module,
    );
    let dark = color
        .and_then(Color::parse)
        .map_or_else(|| "fill:#000000".to_owned(), |c| c.declarations("fill"));
    out.push_str("<g");
    for attr in ["id", "transform", "class"] {
        if let Some(value) = layer.tag.raw_value(attr) {
            out.push_str(&format!(" {attr}=\"{value}\""));
        }
    }
    out.push_str(&format!(
        "><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/><path shape-rendering=\"crispEdges\" style=\"{dark}\" transform=\"translate({ox} {oy}) scale({module})\" d=\""
    ));
    let colors = code.to_colors();
    for row in 0..n {
        let mut col = 0;
        while col < n {
            if colors[row * n + col] == qrcode::Color::Dark {
                let start = col;
                while col < n && colors[row * n + col] == qrcode::Color::Dark {
                    col += 1;
                }
                out.push_str(&format!(
                    "M{start} {row}h{}v1h-{}z",
                    col - start,
                    col - start
                ));
            } else {
                col += 1;
            }
        }
    }
    out.push_str("\"/></g>");
    Ok(())
}

/// The render error for a layer that could not be fitted.
pub(super) fn fit_error(name: &str, error: fit::FitError) -> RenderError {
    match error {
        fit::FitError::DoesNotFit | fit::FitError::Unmeasurable => {
            RenderError::DoesNotFit(name.to_owned())
        }
        fit::FitError::TooMuchWork(which) => RenderError::DoesNotFit(format!(
            "{name} (laying it out takes more measuring than a {which} is allowed)"
        )),
        fit::FitError::Expired => crate::deadline::Expired.into(),
    }
}

/// What `apply` knows of the request beyond its modifications.
pub(super) struct Request<'a> {
    pub(super) renderer: &'a Renderer,
    pub(super) assets: &'a Images,
    pub(super) scale: f32,
}

/// The `href` for layer `name`'s `src`, checked: an asset must have been
/// read by the store; every image must decode and be within the layer's
/// bound (its size at the output scale, a few times over, and never more
/// than the configured image bound).
pub(super) fn image_href(
    name: &str,
    layer: &Layer,
    src: &str,
    request: &Request<'_>,
) -> Result<String, RenderError> {
    let renderer = request.renderer;
    let bound = layer_pixel_bound(layer, request.scale, renderer.image_pixel_limit());
    let rejected = |why: String| RenderError::ImageRejected(format!("layer `{name}`: {why}"));
    match Source::parse(src) {
        Ok(Source::Data(uri)) => {
            let data = crate::modifications::data_uri_bytes(uri).map_err(rejected)?;
            renderer.check_data_image(data, bound).map_err(rejected)?;
            Ok(uri.to_owned())
        }
        Ok(Source::Asset(asset)) => {
            let href = format!("assets/{asset}");
            let image = request
                .assets
                .get(&href)
                .ok_or_else(|| RenderError::AssetNotFound(asset.to_owned()))?;
            let pixels = u64::from(image.width) * u64::from(image.height);
            if pixels > bound {
                return Err(rejected(format!(
                    "{asset} is {}x{} pixels, over the layer's limit of {bound}",
                    image.width, image.height
                )));
            }
            Ok(href)
        }
        Err(why) => Err(RenderError::AssetNotFound(why)),
    }
}

/// The most pixels an image drawn in `layer` may decode to: the layer's
/// box at the output scale, twice over on each axis (sharp on any screen),
/// at least 256×256 for tiny boxes, and never more than `limit`. A layer
/// without a box is bounded by `limit` alone.
pub(super) fn layer_pixel_bound(layer: &Layer, scale: f32, limit: u64) -> u64 {
    match layer.bbox {
        Some([_, _, w, h]) => {
            let side = |v: f32| (f64::from(v.abs()) * f64::from(scale) * 2.0).ceil();
            let pixels = side(w) * side(h);
            (pixels.min(limit as f64) as u64).max(65_536).min(limit)
        }
        None => limit,
    }
}
