//! Certificates as the image path sees them: what `/c/{id}.png` and the
//! social card render, and the one seam through which the image path
//! learns of the registry.
//!
//! The seam is [`Records`]: given a certificate id it answers the
//! account, the template, the edits its name and fields make, and the
//! status it shows, or nothing. The registry implements it; the image
//! path knows no table, key or account rule. What the record says is
//! then rendered like a signed URL's modifications — same template store,
//! fitting, renderer, cache and pool — with one addition: a certificate
//! that does not stand (suspended, revoked, expired) or belongs to the
//! sandbox carries a stamp drawn over it ([`stamp`]), and the stamp's
//! words are part of the cache key, so the clean image is never served
//! for it.
//!
//! Layout: this file holds the seam and the variants; `stamp` writes the
//! stamp's markup; `card` composes the 1200×630 social card.

pub mod card;
pub mod stamp;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::modifications::Modification;
use crate::request::{BaseId, UserId};

/// How a certificate's status shows on its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    /// Valid: the clean image.
    Issued,
    Suspended,
    Revoked,
    Expired,
}

impl Standing {
    /// The word its stamp shows; `None` for a certificate that stands.
    pub fn stamp_word(self) -> Option<&'static str> {
        match self {
            Standing::Issued => None,
            Standing::Suspended => Some("SUSPENDED"),
            Standing::Revoked => Some("REVOKED"),
            Standing::Expired => Some("EXPIRED"),
        }
    }
}

/// A certificate to draw: everything the image path needs of a record.
#[derive(Debug, Clone)]
pub struct RecordView {
    /// The account, whose templates folder holds the template.
    pub account: UserId,
    pub template: BaseId,
    /// The edits the record's name and fields make, in the template's
    /// terms (layer ids), as a signed URL would carry them.
    pub edits: Vec<Modification>,
    pub standing: Standing,
    /// A live certificate; sandbox ones are stamped `SPECIMEN`.
    pub livemode: bool,
}

impl RecordView {
    /// The stamp's words, top to bottom; empty for a live certificate
    /// that stands.
    pub fn stamp_words(&self) -> Vec<&'static str> {
        let mut words = Vec::new();
        if !self.livemode {
            words.push("SPECIMEN");
        }
        words.extend(self.standing.stamp_word());
        words
    }
}

/// Why a record could not be had: the database did not answer. Never
/// cached, answered `503`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable;

/// A boxed future of the seam, so [`Records`] stays object-safe.
pub type Lookup<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Arc<RecordView>>, Unavailable>> + Send + 'a>>;

/// The registry as the image path sees it. An answer may be up to
/// [`MAX_STALENESS_MS`] old; never older.
pub trait Records: Send + Sync {
    /// The certificate `id` names, of whichever account, or `None`.
    fn find<'a>(&'a self, id: &'a str) -> Lookup<'a>;

    /// Tells the registry that `visitor` was shown certificate `id`
    /// (as `find` answered it), for its `certificate.viewed` events. It
    /// must return at once: an in-memory check and a hand-off, never a
    /// database write on the image's path.
    fn viewed(&self, _id: &str, _view: &RecordView, _visitor: Visitor<'_>) {}
}

/// Who asked for a certificate's image.
#[derive(Debug, Clone, Copy)]
pub struct Visitor<'a> {
    /// The client's address as the connection saw it.
    pub client: Option<std::net::IpAddr>,
    /// The request's headers (user agent, referrer, a CDN's place).
    pub headers: &'a axum::http::HeaderMap,
}

/// The longest a status change may take to show on an image served by
/// any process: implementations of [`Records`] keep no answer longer.
pub const MAX_STALENESS_MS: u64 = 500;

/// Which image of a certificate a URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The certificate itself, in the URL's format.
    Whole,
    /// The 1200×630 PNG card for link previews.
    Social,
}

/// The path `/c/{id}.{ext}` or `/c/{id}/social.png`, parsed: the id and
/// what to draw. The id's form is checked here (`cert_` and up to 64
/// characters of `[A-Za-z0-9]`), so nothing else reaches the seam.
pub fn parse_path(path: &str) -> Option<(&str, Variant, crate::request::Format)> {
    use crate::request::Format;
    let rest = path.strip_prefix("/c/")?;
    let (id, variant, format) = if let Some(id) = rest.strip_suffix("/social.png") {
        (id, Variant::Social, Format::Png)
    } else {
        let (id, ext) = rest.rsplit_once('.')?;
        let format = match ext {
            "png" => Format::Png,
            "jpg" | "jpeg" => Format::Jpeg,
            "webp" => Format::Webp,
            "pdf" => Format::Pdf,
            _ => return None,
        };
        (id, Variant::Whole, format)
    };
    let body = id.strip_prefix("cert_")?;
    (!body.is_empty() && body.len() <= 64 && body.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some((id, variant, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Format;

    #[test]
    fn paths_name_a_certificate_and_an_image_of_it() {
        assert_eq!(
            parse_path("/c/cert_abc.png"),
            Some(("cert_abc", Variant::Whole, Format::Png))
        );
        assert_eq!(
            parse_path("/c/cert_abc.pdf"),
            Some(("cert_abc", Variant::Whole, Format::Pdf))
        );
        assert_eq!(
            parse_path("/c/cert_abc/social.png"),
            Some(("cert_abc", Variant::Social, Format::Png))
        );
        for bad in [
            "/c/cert_.png",
            "/c/abc.png",
            "/c/cert_a/b.png",
            "/c/cert_a.gif",
            "/c/cert_a%2e.png",
            "/c/cert_a/social.jpg",
            "/c/cert_a",
        ] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_stamp_says_sandbox_and_status() {
        let view = |livemode, standing| RecordView {
            account: UserId::parse("a").expect("id"),
            template: BaseId::parse("t").expect("id"),
            edits: Vec::new(),
            standing,
            livemode,
        };
        assert!(view(true, Standing::Issued).stamp_words().is_empty());
        assert_eq!(view(false, Standing::Issued).stamp_words(), ["SPECIMEN"]);
        assert_eq!(
            view(false, Standing::Revoked).stamp_words(),
            ["SPECIMEN", "REVOKED"]
        );
        assert_eq!(view(true, Standing::Expired).stamp_words(), ["EXPIRED"]);
    }
}
