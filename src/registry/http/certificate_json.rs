//! The JSON of `/v1/certificates`: the bodies its handlers take and the
//! certificate object they answer, each with the schema the OpenAPI
//! document shows.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::registry::certificate::{status_of, Status};
use crate::registry::rfc3339;
use crate::registry::store::CertificateRecord;

/// Who a new certificate is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// The name drawn on the certificate, by the template's rules for it.
    #[schema(example = "Maria Andersson")]
    pub name: String,
    #[serde(default)]
    #[schema(format = Email)]
    pub email: Option<String>,
}

/// The body of `POST /v1/certificates`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCertificate {
    #[schema(example = "TEafv3AfNptmzii4zj2jkc")]
    pub template_id: String,
    pub recipient: Recipient,
    /// The template's fields by name; each required one must be given.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The integrator's own keys (at most 50, values up to 500
    /// characters); never shown publicly.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Whether the certificate is e-mailed to its recipient (then
    /// `recipient.email` is required); the account's default when absent.
    /// No e-mail is sent yet.
    #[serde(default)]
    pub send_email: Option<bool>,
}

/// A correction of the recipient of a certificate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientCorrection {
    /// The corrected name; the images are drawn again with it.
    #[serde(default)]
    pub name: Option<String>,
}

/// The body of `PATCH /v1/certificates/{id}`: each field given is changed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeCertificate {
    #[serde(default)]
    #[schema(schema_with = stored_status)]
    pub status: Option<String>,
    /// Absent leaves the expiry; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<String>>,
    /// Replaces the metadata whole.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub recipient: Option<RecipientCorrection>,
    /// Corrected fields, by name.
    #[serde(default)]
    pub fields: Option<BTreeMap<String, String>>,
}

/// The body of `POST /v1/certificates/{id}/revoke` (which may be empty).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    /// Why, up to 500 characters; shown as `revocation_reason`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The statuses a certificate shows.
fn shown_status() -> utoipa::openapi::Object {
    super::openapi::one_of(
        [
            Status::Issued,
            Status::Suspended,
            Status::Revoked,
            Status::Expired,
        ]
        .map(Status::name),
        "`expired` once `expires_at` has passed (computed, never stored); `revoked` is final.",
    )
}

/// The statuses a change may set (`expired` is computed, never set).
fn stored_status() -> utoipa::openapi::Object {
    super::openapi::one_of(
        [Status::Issued, Status::Suspended, Status::Revoked].map(Status::name),
        "`issued` and `suspended` go both ways; `revoked` is final.",
    )
}

/// A field that is present, `null` included, as `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A certificate's recipient as the contract shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CertificateRecipient)]
struct RecipientObject {
    name: String,
    email: Option<String>,
}

/// A certificate as the contract shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Certificate)]
pub struct CertificateObject {
    #[schema(example = "cert_7gq3k9x2m4p8r1t6v0w5y")]
    id: String,
    #[schema(schema_with = certificate_tag)]
    object: &'static str,
    /// `false` in the sandbox (a `sk_test_` key).
    livemode: bool,
    #[schema(schema_with = shown_status)]
    status: &'static str,
    template_id: String,
    recipient: RecipientObject,
    fields: BTreeMap<String, String>,
    /// The integrator's own keys; never shown publicly.
    metadata: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    issued_at: String,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    revocation_reason: Option<String>,
    /// The public page that verifies the certificate.
    #[schema(format = "uri")]
    verification_url: String,
    #[schema(format = "uri")]
    image_url: String,
    #[schema(format = "uri")]
    pdf_url: String,
    /// A 1200×630 card for link previews.
    #[schema(format = "uri")]
    social_image_url: String,
    /// The transparency log's entry, once it exists.
    #[schema(value_type = Option<Object>)]
    proof: Option<serde_json::Value>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

fn certificate_tag() -> utoipa::openapi::Object {
    super::openapi::tag("certificate")
}

impl CertificateObject {
    /// The certificate's id, a list's cursor.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The object of `record` at `now`, its links under `base`.
    pub fn new(record: CertificateRecord, base: &str, now: i64) -> CertificateObject {
        let link = format!("{base}/c/{}", record.id);
        CertificateObject {
            object: "certificate",
            livemode: record.environment.is_live(),
            status: status_of(&record, now).name(),
            template_id: record.template_id,
            recipient: RecipientObject {
                name: record.recipient_name,
                email: record.recipient_email,
            },
            fields: record.fields,
            metadata: record.metadata,
            issued_at: rfc3339(record.created_at),
            expires_at: record.expires_at.map(rfc3339),
            revoked_at: record.revoked_at.map(rfc3339),
            revocation_reason: record.revocation_reason,
            image_url: format!("{link}.png"),
            pdf_url: format!("{link}.pdf"),
            social_image_url: format!("{link}/social.png"),
            verification_url: link,
            proof: None,
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
            id: record.id,
        }
    }
}
