//! Template previews for the registry's `GET /v1/templates/{id}/preview.png`:
//! the template drawn with its own text by the signed URL's cache and
//! render path, at most [`PREVIEW_WIDTH`] pixels wide.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::image::{render, Drawing, Job, Painter};
use crate::cache::{Busy, ImageCache, Outcome};
use crate::images::Images;
use crate::options::RenderOptions;
use crate::registry::templates::{Preview, PreviewError, PreviewFuture, Previews};
use crate::render::RenderError;
use crate::request::{BaseId, Format, ImagePath, UserId};
use crate::template::{TemplateError, TemplateStore};

/// The widest preview drawn, in pixels: enough to read a template, and
/// a fraction of a full-size render's cost.
pub const PREVIEW_WIDTH: u32 = 1200;

/// The image side's half of [`Previews`]: no registry inside, so the
/// registry holding it makes no cycle.
pub struct Previewer {
    pub templates: Arc<TemplateStore>,
    pub cache: ImageCache,
    pub painter: Painter,
}

impl Previews for Previewer {
    fn preview<'a>(&'a self, account: &'a UserId, template: &'a BaseId) -> PreviewFuture<'a> {
        Box::pin(async move {
            let prepared =
                self.templates
                    .get(account, template)
                    .await
                    .map_err(|error| match error {
                        TemplateError::NotFound => PreviewError::NotFound,
                        TemplateError::Rejected(why) => PreviewError::Rejected(why),
                    })?;
            let width = prepared.size().to_int_size().width();
            let options = RenderOptions {
                width: Some(width.min(PREVIEW_WIDTH)),
                ..RenderOptions::default()
            };
            let path = ImagePath {
                user: account.clone(),
                base: template.clone(),
                format: Format::Png,
            };
            let assets = Arc::new(Images::default());
            let mut hash = Sha256::new();
            hash.update(b"signet template preview\n");
            hash.update(ImageCache::key(&prepared, &assets, &path, &[], &options));
            let key: [u8; 32] = hash.finalize().into();
            let job = Job {
                template: prepared,
                assets,
                path,
                mods: Vec::new(),
                options,
                drawing: Drawing::Signed,
            };
            let outcome = self
                .cache
                .get_or_render(key, render(self.painter.clone(), job))
                .await
                .map_err(|Busy| PreviewError::Busy)?;
            match outcome {
                Outcome::Image(image) => Ok(Preview {
                    png: image.body.clone(),
                    etag: format!("\"{}\"", hex::encode(&key[..16])),
                }),
                Outcome::Failed(RenderError::Busy) => Err(PreviewError::Busy),
                Outcome::Failed(error) => Err(PreviewError::Rejected(error.to_string())),
            }
        })
    }
}
