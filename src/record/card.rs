//! The social card: a certificate drawn whole into the 1200×630 PNG that
//! link previews (LinkedIn, Slack, X, Facebook) show, on a neutral
//! ground with a shadow, stamp included.
//!
//! It is the certificate's SVG (edits and stamp applied) rendered by the
//! same renderer, scaled to fit inside a margin: any template's aspect
//! ratio gives a card of the size every preview expects.

use std::sync::Arc;
use std::time::Instant;

use resvg::tiny_skia;

use crate::images::Images;
use crate::options::RenderOptions;
use crate::render::{blank, whole_bytes, RenderError, Rendered, Renderer};
use crate::request::Format;

/// The card's size: what Open Graph previews crop to least.
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 630;
/// Free space around the certificate on each side, in pixels.
const MARGIN: f32 = 36.0;

/// Renders `svg` (drawing `images`) as the card.
pub fn render(
    renderer: &Renderer,
    svg: &str,
    images: &Arc<Images>,
) -> Result<Rendered, RenderError> {
    let started = Instant::now();
    let tree = renderer.tree(svg, images)?;
    let size = tree.size();
    let k = ((WIDTH as f32 - 2.0 * MARGIN) / size.width())
        .min((HEIGHT as f32 - 2.0 * MARGIN) / size.height());
    let (w, h) = (size.width() * k, size.height() * k);
    let (dx, dy) = ((WIDTH as f32 - w) / 2.0, (HEIGHT as f32 - h) / 2.0);
    let _lease = renderer.lease(whole_bytes(WIDTH, HEIGHT, images))?;
    let mut pixmap = blank(WIDTH, HEIGHT)?;
    pixmap.fill(tiny_skia::Color::from_rgba8(0xec, 0xee, 0xf1, 0xff));
    let fill = |pixmap: &mut tiny_skia::Pixmap, x: f32, y: f32, rgba: [u8; 4]| {
        if let Some(rect) = tiny_skia::Rect::from_xywh(x, y, w, h) {
            let mut paint = tiny_skia::Paint::default();
            paint.set_color_rgba8(rgba[0], rgba[1], rgba[2], rgba[3]);
            pixmap.fill_rect(rect, &paint, tiny_skia::Transform::identity(), None);
        }
    };
    // A soft shadow, then white under the certificate: a template with a
    // transparent ground still reads as a sheet of paper.
    for (offset, alpha) in [(6.0, 0x10), (4.0, 0x18), (2.0, 0x20)] {
        fill(
            &mut pixmap,
            dx + offset / 2.0,
            dy + offset,
            [0, 0, 0, alpha],
        );
    }
    fill(&mut pixmap, dx, dy, [0xff, 0xff, 0xff, 0xff]);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_row(k, 0.0, 0.0, k, dx, dy),
        &mut pixmap.as_mut(),
    );
    let rastered = Instant::now();
    crate::deadline::check()?;
    let body = renderer.encode(&pixmap, Format::Png, &RenderOptions::default())?;
    Ok(Rendered {
        body,
        raster: rastered - started,
        encode: rastered.elapsed(),
    })
}
