//! `GET`/`HEAD /c/{id}.{png,jpg,webp,pdf}` and `/c/{id}/social.png`: a
//! certificate's images, drawn from its record.
//!
//! The id is the credential: certificate ids are unguessable, so these
//! URLs need no signature. What the record says comes through the one
//! seam, `record::Records`; from there on the request takes the signed
//! URL's path (template store, cache key, coalesced render in the pool),
//! with the stamp's words and the variant in the key. A status change
//! therefore changes the key (and the ETag) and is never answered from
//! the clean entry; `Cache-Control: no-cache` has browsers and CDNs ask
//! again each time, which a matching ETag answers with a `304`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::Extension;
use sha2::{Digest, Sha256};

use super::error::{header_value, AppError};
use super::image::{answer, Drawing, Job, Log};
use super::state::AppState;
use crate::cache::{ImageCache, Key};
use crate::options::RenderOptions;
use crate::record::{self, Unavailable, Variant};
use crate::request::ImagePath;

/// Browsers and CDNs may keep a certificate's image but must ask before
/// showing it again: its status can change at any time.
const CACHE_CONTROL: &str = "public, no-cache";

/// The handler of `/c/…`.
pub async fn certificate(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let mut log = Log::start();
    let client = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let response = match serve(&state, &method, &uri, &headers, client, &mut log).await {
        Ok(response) => response,
        Err(error) => error.into_response_for(&state, &headers).await,
    };
    // The id only when it has an id's form: a stray path may hold
    // anything, an API key pasted into it included.
    let id = record::parse_path(uri.path()).map(|(id, _, _)| id);
    log.write(&method, id, &response);
    response
}

async fn serve(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
    log: &mut Log,
) -> Result<Response, AppError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(AppError::MethodNotAllowed);
    }
    let (id, variant, format) =
        record::parse_path(uri.path()).ok_or(AppError::UnknownCertificate)?;
    let records = state.records.as_ref().ok_or(AppError::UnknownCertificate)?;
    let view = records
        .find(id)
        .await
        .map_err(|Unavailable| AppError::RegistryUnavailable)?
        .ok_or(AppError::UnknownCertificate)?;
    if method == Method::GET {
        records.viewed(id, &view, record::Visitor { client, headers });
    }
    log.user = Some(view.account.to_string());
    log.template = Some(view.template.to_string());
    let template = state.templates.get(&view.account, &view.template).await?;
    let assets = state.templates.assets(&template, &view.edits).await?;
    let path = ImagePath {
        user: view.account.clone(),
        base: view.template.clone(),
        format,
    };
    let options = RenderOptions::default();
    let words = view.stamp_words();
    let key = record_key(
        ImageCache::key(&template, &assets, &path, &view.edits, &options),
        variant,
        &words,
    );
    let etag = format!("\"{}\"", hex::encode(&key[..16]));
    let job = || Job {
        template,
        assets,
        path,
        mods: view.edits.clone(),
        options,
        drawing: Drawing::Record { words, variant },
    };
    let mut response = answer(state, headers, &etag, key, job, format, log).await?;
    let h = response.headers_mut();
    h.insert(header::ETAG, header_value(&etag));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(response)
}

/// The cache key of a certificate's image: the key its edits would have
/// in a signed URL, with the variant and the stamp's words. Never equal
/// to a signed URL's key, and different for every standing.
fn record_key(edits: Key, variant: Variant, words: &[&str]) -> Key {
    let mut hash = Sha256::new();
    hash.update(b"signet record image\n");
    hash.update(edits);
    hash.update(match variant {
        Variant::Whole => b"whole\n".as_slice(),
        Variant::Social => b"social\n".as_slice(),
    });
    for word in words {
        hash.update(word.as_bytes());
        hash.update(b"\n");
    }
    hash.finalize().into()
}
