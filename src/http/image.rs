//! `GET`/`HEAD /<user_id>/<base_id>.<ext>`: the order of checks, the cache,
//! and the success headers.
//!
//! The order is the contract: size, path, query, user, signature — and only
//! then is anything decoded or any file looked at.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::error::{header_value, AppError};
use super::state::AppState;
use crate::cache::{Busy, Image, ImageCache, Key, Outcome};
use crate::images::Images;
use crate::incremental::{Incremental, Path};
use crate::modifications::{self, Modification};
use crate::options::{self, RenderOptions};
use crate::pool::{PoolError, RenderPool};
use crate::record::{card, stamp, Variant};
use crate::render::{RenderError, Renderer};
use crate::request::{self, Format, ImagePath, RequestError};
use crate::signing;
use crate::template::Template;

/// What the access log says about an image request.
pub(super) struct Log {
    started: Instant,
    pub user: Option<String>,
    pub template: Option<String>,
    pub cache: &'static str,
    pub render_ms: Option<f64>,
}

impl Log {
    /// A request's log, from now.
    pub fn start() -> Log {
        Log {
            started: Instant::now(),
            user: None,
            template: None,
            cache: "-",
            render_ms: None,
        }
    }

    /// The access log's line for `response`; `path` where the user and
    /// template do not name the image (a certificate's).
    pub fn write(&self, method: &Method, path: Option<&str>, response: &Response) {
        tracing::info!(
            status = response.status().as_u16(),
            method = %method,
            path = path.map(super::escape).as_deref().unwrap_or("-"),
            user = self.user.as_deref().unwrap_or("-"),
            template = self.template.as_deref().unwrap_or("-"),
            cache = self.cache,
            render_ms = self.render_ms,
            elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            error = response.headers().get("x-stencil-error").and_then(|v| v.to_str().ok()),
            "request"
        );
    }
}

/// The image handler; also the fallback for every other path.
pub async fn image(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut log = Log::start();
    let response = match serve(&state, &method, &uri, &headers, &mut log).await {
        Ok(response) => response,
        Err(error) => error.into_response_for(&state, &headers).await,
    };
    log.write(&method, None, &response);
    response
}

async fn serve(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    log: &mut Log,
) -> Result<Response, AppError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(AppError::MethodNotAllowed);
    }
    let target = uri.path_and_query().map_or("", |pq| pq.as_str());
    if target.len() > state.config.max_url_bytes {
        return Err(RequestError::TooLarge(format!(
            "the URL has {} bytes (limit {})",
            target.len(),
            state.config.max_url_bytes
        ))
        .into());
    }
    let path = request::parse_path(uri.path())?;
    let query = request::parse_query(uri.query())?;
    let secrets = state.users.get(&path.user).ok_or(AppError::UnknownUser)?;
    // Logged only once the user is known: the path of a stray request
    // may hold anything, an API key pasted into it included.
    log.user = Some(path.user.to_string());
    log.template = Some(path.base.to_string());
    // Checked before the signature: an `=` before the padding is the shape
    // of options moved into the modifications to drop them from the
    // payload. Other text that is not base64 is the decoder's to refuse,
    // after the signature, as the contract orders.
    if signing::check_modifications(&query.modifications) == Err(signing::Unsigned::Forged) {
        return Err(AppError::InvalidSignature);
    }
    let payloads = signing::payloads(
        path.user.as_str(),
        path.base.as_str(),
        &query.modifications,
        &query.options,
    );
    // Every payload is tried, whatever matched, like every secret.
    let verified = payloads.iter().fold(false, |ok, payload| {
        signing::verify(secrets, payload, &query.signature) | ok
    });
    if !verified {
        return Err(AppError::InvalidSignature);
    }
    let now = options::unix_now();
    let render_options = RenderOptions::parse(&query.options, path.format, now)?;
    let mods = modifications::decode(&query.modifications, state.limits)?;
    let template = state.templates.get(&path.user, &path.base).await?;
    let assets = state.templates.assets(&template, &mods).await?;
    let key = ImageCache::key(&template, &assets, &path, &mods, &render_options);
    let etag = format!("\"{}\"", hex::encode(&key[..16]));
    let warnings = template.plan(&mods).warnings;

    let job = || Job {
        template,
        assets,
        path: path.clone(),
        mods,
        options: render_options.clone(),
        drawing: Drawing::Signed,
    };
    let mut response = answer(state, headers, &etag, key, job, path.format, log).await?;
    let h = response.headers_mut();
    h.insert(header::ETAG, header_value(&etag));
    // A URL with an expiry must not outlive it in a shared cache.
    let cache_control = match render_options.exp {
        Some(exp) => format!("public, max-age={}", exp.saturating_sub(now)),
        None => state.config.cache_control.clone(),
    };
    h.insert(header::CACHE_CONTROL, header_value(&cache_control));
    if !warnings.is_empty() {
        h.insert("x-stencil-warning", header_value(&warnings.join("; ")));
    }
    Ok(response)
}

/// The answer for cache key `key` (tagged `etag`): `304` when the client
/// has it, else the cached image or the one `job` renders (once, however
/// many ask meanwhile), with the success headers.
pub(super) async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    etag: &str,
    key: Key,
    job: impl FnOnce() -> Job,
    format: Format,
    log: &mut Log,
) -> Result<Response, AppError> {
    if if_none_match(headers, etag) {
        log.cache = "revalidated";
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let (outcome, hit) = match state.cache.get(&key).await {
        Some(outcome) => (outcome, true),
        None => {
            let outcome = state
                .cache
                .get_or_render(key, render(state.painter(), job()))
                .await
                .map_err(|Busy| AppError::Busy)?;
            (outcome, false)
        }
    };
    log.cache = if hit { "hit" } else { "miss" };
    match outcome {
        Outcome::Image(image) => Ok(ok_response(&image, hit, format.content_type(), log)),
        Outcome::Failed(error) => Err(error.into()),
    }
}

fn ok_response(image: &Image, hit: bool, content_type: &'static str, log: &mut Log) -> Response {
    // `Bytes` is reference-counted: the body is shared, not copied.
    let mut response = ([(header::CONTENT_TYPE, content_type)], image.body.clone()).into_response();
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("timing-allow-origin", HeaderValue::from_static("*"));
    if !image.fit.is_empty() {
        h.insert("x-stencil-fit", header_value(&image.fit));
    }
    if hit {
        h.insert("x-stencil-cache", HeaderValue::from_static("hit"));
    } else {
        let ms = image.render_time.as_secs_f64() * 1000.0;
        log.render_ms = Some(ms);
        h.insert("x-stencil-cache", HeaderValue::from_static("miss"));
        let how = if image.incremental {
            "incremental"
        } else {
            "whole"
        };
        h.insert(
            "server-timing",
            header_value(&format!("render;dur={ms:.1};desc={how}")),
        );
    }
    response
}

/// What a miss draws besides the template and its edits.
pub(super) enum Drawing {
    /// A signed URL's image: the template and its edits only.
    Signed,
    /// A certificate's: with the stamp's words over it (none for a live
    /// one that stands), whole or as the social card.
    Record {
        words: Vec<&'static str>,
        variant: Variant,
    },
}

/// Everything one cache miss renders.
pub(super) struct Job {
    pub template: Arc<Template>,
    pub assets: Arc<Images>,
    pub path: ImagePath,
    pub mods: Vec<Modification>,
    pub options: RenderOptions,
    pub drawing: Drawing,
}

/// What a miss is rendered with: the renderer, the bases and the slots.
#[derive(Clone)]
pub struct Painter {
    pub renderer: Arc<Renderer>,
    pub incremental: Arc<Incremental>,
    pub pool: Arc<RenderPool>,
}

/// The render of one cache miss, run once however many requests wait on it.
pub(super) async fn render(painter: Painter, job: Job) -> Result<Outcome, Busy> {
    let Painter {
        renderer,
        incremental,
        pool,
    } = painter;
    let Job {
        template,
        assets,
        path,
        mods,
        options,
        drawing,
    } = job;
    let job = move || {
        let started = Instant::now();
        let plan = template.plan(&mods);
        let scale = options.factor(template.size().to_int_size().width());
        let applied = template.apply_with(&plan, &renderer, &assets, scale)?;
        let (rendered, how) = match &drawing {
            // Stamps and cards are drawn whole: a stamped certificate is
            // rare, and its stamp lies over every part of the canvas.
            Drawing::Record { words, variant }
                if !words.is_empty() || *variant == Variant::Social =>
            {
                let stamped = (!words.is_empty())
                    .then(|| {
                        let markup = stamp::markup(template.user_box(), words);
                        template.with_overlay(&applied, &markup).ok_or_else(|| {
                            RenderError::Rejected("the template has no room for a stamp".into())
                        })
                    })
                    .transpose()?;
                let svg = stamped.as_deref().unwrap_or(&applied.svg);
                let rendered = match variant {
                    Variant::Whole => {
                        renderer.render(svg, &applied.images, path.format, &options)?
                    }
                    Variant::Social => card::render(&renderer, svg, &applied.images)?,
                };
                (rendered, Path::Whole)
            }
            _ => {
                incremental.render(&renderer, &template, &plan, &applied, path.format, &options)?
            }
        };
        tracing::debug!(
            user = %path.user, template = %path.base,
            how = ?how,
            raster_ms = rendered.raster.as_secs_f64() * 1000.0,
            encode_ms = rendered.encode.as_secs_f64() * 1000.0,
            "rendered"
        );
        Ok::<_, RenderError>(Image {
            body: rendered.body.into(),
            render_time: started.elapsed(),
            fit: applied.fit.join(", "),
            incremental: how == Path::Incremental,
        })
    };
    let failed = |why: &str| Ok(Outcome::Failed(RenderError::Failed(why.into())));
    match pool.run(job).await {
        Ok(Ok(image)) => Ok(Outcome::Image(Arc::new(image))),
        // Load, not the URL's fault: answered busy, never remembered.
        Ok(Err(RenderError::Busy)) | Err(PoolError::Busy) => Err(Busy),
        Ok(Err(error)) => Ok(Outcome::Failed(error)),
        Err(PoolError::Panicked) => failed("the render panicked"),
        Err(PoolError::TimedOut) => failed("the render passed its deadline"),
    }
}

/// True when `If-None-Match` names `etag` (weak comparison, as RFC 9110
/// asks for this header) or is `*`.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}
