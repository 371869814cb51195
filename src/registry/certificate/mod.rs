//! Certificates: what an account issued to whom, with which template, in
//! which state.
//!
//! The status rules live here, and [`status_of`] is the one place the
//! shown status is computed from a record: the API, the certificate
//! images and the verification page all ask it, so they never disagree
//! about whether a certificate still stands.
//!
//! Layout: this file holds the rules and the inputs; `template` checks a
//! name and fields against the certificate's template; `issue` makes,
//! changes and revokes certificates, each change in one transaction with
//! its audit row and outbox event, new ones grouped into shared
//! transactions by `writer`; `view` answers the image path's
//! questions about a certificate (`record::Records`).

mod issue;
mod template;
mod view;
mod writer;

use std::collections::BTreeMap;

pub use issue::Owner;
pub(crate) use issue::{insert_issued, revoke_in};
pub use template::{Declaration, FieldDeclaration};
pub use view::{views, Views};
pub use writer::Writer;

use super::error::RegistryError;
use super::store::CertificateRecord;

/// Most metadata keys a certificate may carry.
pub const MAX_METADATA_KEYS: usize = 50;
/// Longest metadata value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
/// Longest metadata key, in characters.
pub const MAX_METADATA_KEY_CHARS: usize = 40;
/// Longest revocation reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest e-mail address (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A certificate's status as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Issued,
    Suspended,
    /// Final: nothing changes a revoked certificate again.
    Revoked,
    /// `expires_at` has passed; computed, never stored.
    Expired,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Issued => "issued",
            Status::Suspended => "suspended",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
        }
    }

    /// A stored status, or one a client may ask for; `expired` is neither.
    pub fn parse_stored(text: &str) -> Option<Status> {
        match text {
            "issued" => Some(Status::Issued),
            "suspended" => Some(Status::Suspended),
            "revoked" => Some(Status::Revoked),
            _ => None,
        }
    }

    /// Any shown status, for list filters.
    pub fn parse(text: &str) -> Option<Status> {
        Status::parse_stored(text).or((text == "expired").then_some(Status::Expired))
    }
}

/// The status `record` shows at `now` (Unix microseconds). Revocation
/// wins over everything; a passed `expires_at` wins over suspension,
/// since lifting the suspension would not make the certificate valid.
pub fn status_of(record: &CertificateRecord, now: i64) -> Status {
    // A stored status this version does not know (a newer one wrote it)
    // shows as not valid rather than as issued.
    let stored = Status::parse_stored(&record.status).unwrap_or(Status::Suspended);
    if stored == Status::Revoked {
        Status::Revoked
    } else if record.expires_at.is_some_and(|at| at <= now) {
        Status::Expired
    } else {
        stored
    }
}

/// A certificate to issue, as the caller gave it.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub template_id: String,
    pub recipient_name: String,
    pub recipient_email: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    /// Unix microseconds; must lie in the future.
    pub expires_at: Option<i64>,
    /// Whether it is e-mailed (the request's word, or the account's
    /// default): then `recipient_email` is required.
    pub send_email: bool,
}

/// What a `PATCH` changes; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct CertificateChange {
    /// `issued` or `suspended`; `revoked` revokes.
    pub status: Option<Status>,
    /// `Some(None)` removes the expiry.
    pub expires_at: Option<Option<i64>>,
    /// Replaces the whole metadata object.
    pub metadata: Option<BTreeMap<String, String>>,
    /// A corrected recipient name.
    pub recipient_name: Option<String>,
    /// Corrected fields, merged into the current ones.
    pub fields: Option<BTreeMap<String, String>>,
}

/// Refuses metadata the contract does not allow.
pub fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(RegistryError::invalid(
            "metadata",
            format!("metadata holds at most {MAX_METADATA_KEYS} keys"),
        ));
    }
    for (key, value) in metadata {
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(RegistryError::invalid(
                "metadata",
                format!("metadata keys are 1 to {MAX_METADATA_KEY_CHARS} characters"),
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(RegistryError::invalid(
                "metadata",
                format!("metadata value `{key}` is over {MAX_METADATA_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// Refuses an e-mail address that cannot be one. Deliverability is not
/// checked: no mail is sent yet, and a look-up would leak the address.
pub fn check_email(email: &str) -> Result<(), RegistryError> {
    let shaped = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !shaped
        || email.chars().count() > MAX_EMAIL_CHARS
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(RegistryError::invalid_field(
            "recipient.email",
            "recipient.email is not an e-mail address",
        ));
    }
    Ok(())
}

/// Refuses a revocation reason too long or with control characters.
pub fn check_reason(reason: Option<&str>) -> Result<(), RegistryError> {
    if let Some(text) = reason {
        if text.chars().count() > MAX_REASON_CHARS || text.chars().any(char::is_control) {
            return Err(RegistryError::invalid(
                "reason",
                format!(
                    "a reason is at most {MAX_REASON_CHARS} characters, without control characters"
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a time that has already passed.
pub fn check_future(expires_at: Option<i64>, now: i64) -> Result<(), RegistryError> {
    if expires_at.is_some_and(|at| at <= now) {
        return Err(RegistryError::invalid(
            "expires_at",
            "expires_at must lie in the future",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Environment;

    fn record(status: &str, expires_at: Option<i64>) -> CertificateRecord {
        CertificateRecord {
            id: "cert_x".into(),
            account_id: "a".into(),
            environment: Environment::Test,
            status: status.into(),
            template_id: "t".into(),
            template_hash: String::new(),
            salt: String::new(),
            recipient_name: "n".into(),
            recipient_email: None,
            fields: BTreeMap::new(),
            metadata: BTreeMap::new(),
            expires_at,
            revoked_at: None,
            revocation_reason: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn expiry_shows_once_passed_and_revocation_wins_over_it() {
        assert_eq!(status_of(&record("issued", Some(10)), 9), Status::Issued);
        assert_eq!(status_of(&record("issued", Some(10)), 10), Status::Expired);
        assert_eq!(
            status_of(&record("suspended", Some(10)), 11),
            Status::Expired
        );
        assert_eq!(status_of(&record("revoked", Some(10)), 11), Status::Revoked);
        assert_eq!(status_of(&record("suspended", None), 11), Status::Suspended);
    }

    #[test]
    fn metadata_is_bounded_in_keys_and_value_length() {
        let many: BTreeMap<_, _> = (0..51).map(|i| (i.to_string(), "v".into())).collect();
        assert!(check_metadata(&many).is_err());
        let long = BTreeMap::from([("k".to_owned(), "x".repeat(501))]);
        assert!(check_metadata(&long).is_err());
        let fine = BTreeMap::from([("k".to_owned(), "x".repeat(500))]);
        assert!(check_metadata(&fine).is_ok());
    }
}
