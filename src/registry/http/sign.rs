//! `/v1/sign`: a signed image URL for a tool that can call a URL with a
//! header but cannot run code (a spreadsheet, Airtable, Make, Zapier).
//!
//! Scope `sign` only (`*` includes it): a signed URL is as good as the
//! account's secret for the text it carries, so no reading or issuing
//! scope grants it. The URL is the one the account's own code signs, byte
//! for byte (`signer::UrlSigner`, the rules of `signet sign`), with the
//! account's first active secret. Test keys sign too, with the same
//! secret: a signed URL has no sandbox, and it would be the same URL.
//!
//! Signing changes no state, so it is not audited: the audit log records
//! what changes an account, and a URL can be signed without the registry
//! by anyone who holds the secret.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::query_component;
use super::context::{request_base, Caller};
use super::error::{ApiError, ErrorBody};
use super::idempotency::{answer, Post};
use crate::modifications::Modification;
use crate::options::RenderOptions;
use crate::registry::Registry;
use crate::request::{self, Format, RequestError, OPTION_NAMES};
use crate::signer::{Refusal, UrlSigner};

const SCOPE: &str = "sign";

/// The formats `format` names, as the image path reads them.
const FORMATS: &str = "png, jpg, jpeg, webp, pdf";

/// The answer: the signed URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedUrl {
    /// The image URL, signed: `<base>/<user>/<template>.<ext>?modifications=…&s=…`.
    #[schema(format = "uri")]
    url: String,
}

/// The body of `POST /v1/sign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The template, which the account must have.
    // Read as empty when missing, so the refusal can name it.
    #[serde(default)]
    #[schema(required = true, example = "TEafv3AfNptmzii4zj2jkc")]
    template_id: String,
    /// The layers' changes, as a signed URL's modifications carry them.
    #[serde(default)]
    modifications: Vec<Modification>,
    /// Signed rendering options.
    #[serde(default)]
    options: SignOptions,
    /// The output format: `png` (the default), `jpg`, `jpeg`, `webp` or `pdf`.
    #[serde(default)]
    #[schema(nullable = false, example = "png")]
    format: Option<String>,
}

/// The rendering options of a signed URL, signed with it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOptions {
    /// Unix time (seconds) after which the URL answers `410 Expired`.
    #[schema(nullable = false)]
    exp: Option<u64>,
    /// 1 to 100, for `jpg` and `webp`.
    #[schema(nullable = false)]
    quality: Option<u8>,
    /// 0.1 to 4, for raster formats; not with `width`.
    #[schema(nullable = false)]
    scale: Option<f32>,
    /// A version tag (1 to 64 of `A-Z a-z 0-9 . _ -`): a new one makes caches fetch anew.
    #[schema(nullable = false)]
    v: Option<String>,
    /// 16 to 10000 pixels, for raster formats; not with `scale`.
    #[schema(nullable = false)]
    width: Option<u32>,
}

impl SignOptions {
    /// As the URL carries them, sorted by name (the order of
    /// `OPTION_NAMES`), so one input always gives one URL.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let values = [
            self.exp.map(|n| n.to_string()),
            self.quality.map(|n| n.to_string()),
            self.scale.map(|n| n.to_string()),
            self.v.clone(),
            self.width.map(|n| n.to_string()),
        ];
        OPTION_NAMES
            .iter()
            .zip(values)
            .filter_map(|(name, value)| Some((*name, value?)))
            .collect()
    }
}

/// What is to be signed, from either form.
struct Signing {
    template_id: String,
    ext: String,
    options: Vec<(&'static str, String)>,
    modifications: Vec<Modification>,
    /// Whether the input was a query (errors name its parameters) or a
    /// body (errors name its fields).
    query: bool,
}

impl Signing {
    fn option_param(&self, name: &str) -> String {
        if self.query {
            name.to_owned()
        } else {
            format!("options.{name}")
        }
    }

    /// The parameter or field a refusal names, when there is one.
    fn refusal_param(&self, refusal: &Refusal) -> Option<String> {
        match refusal {
            Refusal::TooMany { .. } => (!self.query).then(|| "modifications".to_owned()),
            Refusal::Modification { index, .. } if self.query => {
                self.modifications.get(*index).map(|m| m.name.clone())
            }
            Refusal::Modification { index, field, .. } => Some(match field {
                Some(field) => format!("modifications[{index}].{field}"),
                None => format!("modifications[{index}]"),
            }),
            Refusal::TooLong { .. } => None,
        }
    }
}

/// `GET /v1/sign?template_id=…&<layer>=<text>…`.
#[utoipa::path(
    get,
    path = "/v1/sign",
    operation_id = "sign_url_from_query",
    tag = "sign",
    summary = "Sign an image URL (query)",
    description = "The signed image URL the account's own code would write, for a tool that \
                   can call a URL but cannot run code (scope `sign`). Every parameter other \
                   than `template_id`, `format` and the option names is a layer's name and \
                   its new text, in order, at most once each; `+` is a space, `%2B` a plus. \
                   The text is checked with the rules of signed URLs. Test keys sign too, with \
                   the same secret. Not audited: it changes nothing.",
    params(
        ("template_id" = String, Query, description = "The template"),
        ("format" = Option<String>, Query, description = "`png` (default), `jpg`, `jpeg`, `webp` or `pdf`"),
        ("exp" = Option<u64>, Query, description = "Unix time after which the URL answers `410 Expired`"),
        ("quality" = Option<u8>, Query, description = "1 to 100, for `jpg` and `webp`"),
        ("scale" = Option<f32>, Query, description = "0.1 to 4, for raster formats"),
        ("v" = Option<String>, Query, description = "A version tag"),
        ("width" = Option<u32>, Query, description = "16 to 10000, for raster formats"),
    ),
    responses(
        (status = 200, description = "The signed URL", body = SignedUrl),
        (status = 400, description = "`invalid_request`: a parameter missing or repeated, a \
                                      bad option or format, or text the rules of signed URLs \
                                      refuse (`param` names it); `invalid_template`: no such \
                                      usable template.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the key lacks `sign`.",
            body = ErrorBody),
    ),
)]
pub async fn from_query(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<SignedUrl>, ApiError> {
    caller.require(SCOPE)?;
    let signing = parse_query(uri.query())?;
    let url = sign(&registry, &caller, &request_base(&headers), signing).await?;
    Ok(Json(SignedUrl { url }))
}

/// `POST /v1/sign`, through `Idempotency-Key` like every `POST`.
#[utoipa::path(
    post,
    path = "/v1/sign",
    operation_id = "sign_url",
    tag = "sign",
    summary = "Sign an image URL",
    description = "The signed image URL the account's own code would write, from modifications \
                   as a signed URL carries them (scope `sign`). Checked with the rules of \
                   signed URLs. Test keys sign too, with the same secret. Not audited: it \
                   changes nothing.",
    request_body = SignRequest,
    responses(
        (status = 200, description = "The signed URL", body = SignedUrl),
        (status = 400, description = "`invalid_request`: an unknown or wrong-typed field, a \
                                      bad option or format, or a modification the rules of \
                                      signed URLs refuse (`param` names it, e.g. \
                                      `modifications[0].text`); `invalid_template`: no such \
                                      usable template.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the key lacks `sign`.",
            body = ErrorBody),
    ),
)]
pub async fn from_body(
    State(registry): State<Registry>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let base = request_base(request.headers());
    let (post, body) = match Post::begin::<SignRequest>(&registry, &caller, SCOPE, request).await {
        Ok(begun) => begun,
        Err(answer) => return answer,
    };
    if body.template_id.is_empty() {
        let missing =
            ApiError::invalid_request("`template_id` is required").with_param("template_id");
        return post.finish(Err(missing)).await;
    }
    let signing = Signing {
        options: body.options.pairs(),
        template_id: body.template_id,
        ext: body.format.unwrap_or_else(|| "png".into()),
        modifications: body.modifications,
        query: false,
    };
    let signed = sign(&registry, &caller, &base, signing).await;
    post.finish(signed.map(|url| answer(StatusCode::OK, &SignedUrl { url })))
        .await
}

/// The query of `GET /v1/sign`, in order.
fn parse_query(query: Option<&str>) -> Result<Signing, ApiError> {
    let mut template_id = None;
    let mut ext = None;
    let mut options: Vec<(&'static str, String)> = Vec::new();
    let mut modifications: Vec<Modification> = Vec::new();
    for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let (name, value) = (query_component(name)?, query_component(value)?);
        let twice =
            || ApiError::invalid_request(format!("`{name}` is given twice")).with_param(&name);
        if name.is_empty() {
            return Err(ApiError::invalid_request(
                "A query parameter has no name; give each layer as <layer>=<text>",
            ));
        }
        let slot = match name.as_str() {
            "template_id" => &mut template_id,
            "format" => &mut ext,
            _ => {
                if let Some(option) = OPTION_NAMES.iter().find(|n| **n == name) {
                    if options.iter().any(|(n, _)| n == option) {
                        return Err(twice());
                    }
                    options.push((option, value));
                } else if modifications.iter().any(|m| m.name == name) {
                    return Err(twice());
                } else {
                    modifications.push(Modification::text(&name, &value));
                }
                continue;
            }
        };
        if slot.is_some() {
            return Err(twice());
        }
        *slot = Some(value);
    }
    let template_id = template_id.ok_or_else(|| {
        ApiError::invalid_request("`template_id` is required").with_param("template_id")
    })?;
    // Sorted by name, as the body's options are, so both forms sign one URL.
    options.sort_by_key(|(name, _)| *name);
    Ok(Signing {
        template_id,
        ext: ext.unwrap_or_else(|| "png".into()),
        options,
        modifications,
        query: true,
    })
}

/// Checks `signing` with the rules of signed URLs and signs it.
async fn sign(
    registry: &Registry,
    caller: &Caller,
    base_url: &str,
    signing: Signing,
) -> Result<String, ApiError> {
    let account = &caller.key.account_id;
    registry
        .check_signable(account, &signing.template_id)
        .await?;
    let format = format_of(&signing.ext)?;
    check_options(&signing, format)?;
    let terms = registry.signing_terms(account)?;
    let signer = UrlSigner {
        base_url: base_url.to_owned(),
        user: account.clone(),
        base: signing.template_id.clone(),
        ext: signing.ext.clone(),
        options: signing.options.clone(),
        secret: terms.secret,
        limits: terms.limits,
        max_url_bytes: terms.max_url_bytes,
    };
    signer.url(&signing.modifications).map_err(|refusal| {
        let error = ApiError::invalid_request(refusal.to_string());
        match signing.refusal_param(&refusal) {
            Some(param) => error.with_param(param),
            None => error,
        }
    })
}

/// The format an extension names, as the image path reads it.
fn format_of(ext: &str) -> Result<Format, ApiError> {
    request::parse_path(&format!("/u/b.{ext}"))
        .map(|path| path.format)
        .map_err(|_| {
            ApiError::invalid_request(format!("`format` must be one of {FORMATS}"))
                .with_param("format")
        })
}

/// The options with the bounds and format rules of the image path: each
/// alone first, so the one at fault is named, then together.
fn check_options(signing: &Signing, format: Format) -> Result<(), ApiError> {
    // The expiry is checked against the epoch, not the clock: only its
    // grammar is the signer's business, as for `signet sign`.
    let refused = |error: RequestError| {
        ApiError::invalid_request(match error {
            RequestError::BadRequest(why) | RequestError::TooLarge(why) => why,
            RequestError::Expired => "`exp` must be a Unix time after 0".into(),
            other => other.to_string(),
        })
    };
    for option in &signing.options {
        RenderOptions::parse(std::slice::from_ref(option), format, 0)
            .map_err(|e| refused(e).with_param(signing.option_param(option.0)))?;
    }
    RenderOptions::parse(&signing.options, format, 0).map_err(|e| {
        let error = refused(e);
        if signing.query {
            error
        } else {
            error.with_param("options")
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_keeps_layer_order_and_takes_options_and_format_apart() {
        let signing = parse_query(Some(
            "template_id=T&b=Zo%C3%AB+A&width=800&a=x%2By&format=pdf&exp=9",
        ))
        .unwrap();
        assert_eq!(signing.template_id, "T");
        assert_eq!(signing.ext, "pdf");
        assert_eq!(
            signing.options,
            [("exp", "9".to_string()), ("width", "800".to_string())]
        );
        assert_eq!(
            signing.modifications,
            [
                Modification::text("b", "Zoë A"),
                Modification::text("a", "x+y")
            ]
        );
    }

    #[test]
    fn a_repeated_or_missing_parameter_is_refused_by_name() {
        for (query, param) in [
            ("template_id=T&a=1&a=2", Some("a")),
            ("template_id=T&width=1&width=2", Some("width")),
            ("template_id=T&template_id=U", Some("template_id")),
            ("a=1", Some("template_id")),
            ("template_id=T&=x", None),
            ("template_id=T&a=%FF", None),
        ] {
            let error = parse_query(Some(query)).err().unwrap();
            assert_eq!(
                (error.code, error.param.as_deref()),
                ("invalid_request", param),
                "{query}"
            );
        }
    }

    #[test]
    fn body_options_are_written_sorted_by_name() {
        let options = SignOptions {
            width: Some(800),
            exp: Some(1_900_000_000),
            scale: None,
            quality: None,
            v: Some("a.1".into()),
        };
        assert_eq!(
            options.pairs(),
            [
                ("exp", "1900000000".to_string()),
                ("v", "a.1".to_string()),
                ("width", "800".to_string())
            ]
        );
    }
}
