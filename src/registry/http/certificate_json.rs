//! The JSON of `/v1/certificates`: the bodies its handlers take and the
//! certificate object they answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::registry::certificate::status_of;
use crate::registry::rfc3339;
use crate::registry::store::CertificateRecord;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// The body of `POST /v1/certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCertificate {
    pub template_id: String,
    pub recipient: Recipient,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Accepted for the contract; no e-mail is sent yet.
    #[serde(default)]
    #[allow(dead_code)]
    pub send_email: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientCorrection {
    #[serde(default)]
    pub name: Option<String>,
}

/// The body of `PATCH /v1/certificates/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeCertificate {
    #[serde(default)]
    pub status: Option<String>,
    /// Absent leaves the expiry; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<String>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub recipient: Option<RecipientCorrection>,
    #[serde(default)]
    pub fields: Option<BTreeMap<String, String>>,
}

/// The body of `POST /v1/certificates/{id}/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    #[serde(default)]
    pub reason: Option<String>,
}

/// A field that is present, `null` included, as `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Serialize)]
struct RecipientObject {
    name: String,
    email: Option<String>,
}

/// A certificate as the contract shows it.
#[derive(Debug, Serialize)]
pub struct CertificateObject {
    id: String,
    object: &'static str,
    livemode: bool,
    status: &'static str,
    template_id: String,
    recipient: RecipientObject,
    fields: BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
    issued_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    revocation_reason: Option<String>,
    verification_url: String,
    image_url: String,
    pdf_url: String,
    social_image_url: String,
    /// The transparency log's entry, once it exists.
    proof: Option<serde_json::Value>,
    created_at: String,
    updated_at: String,
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
