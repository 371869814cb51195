//! What can go wrong in the registry, in its own terms: no status codes
//! here (`registry::http::error` maps these, and only it).

use thiserror::Error;

/// A registry operation's failure.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The configuration cannot give a working registry (bad URL, a data
    /// folder that cannot be made, a migration that fails).
    #[error("registry configuration: {0}")]
    Config(String),
    /// No account has this id.
    #[error("unknown account `{0}`")]
    UnknownAccount(String),
    /// No object of this kind and id for the caller (another account's or
    /// environment's object is reported the same way).
    #[error("no such {kind}: {id}")]
    NotFound { kind: &'static str, id: String },
    /// A value given by the caller is refused; `param` names the field.
    #[error("{message}")]
    Invalid {
        param: Option<String>,
        message: String,
    },
    /// The template named does not exist for the account or cannot be
    /// used; the message says which.
    #[error("{0}")]
    InvalidTemplate(String),
    /// A certificate's name or field that its template refuses: a field
    /// it lacks, a required one missing, text it cannot take.
    #[error("{message}")]
    InvalidField { param: String, message: String },
    /// A status change the rules forbid (a revoked certificate is final).
    #[error("{0}")]
    InvalidTransition(String),
    /// The database could not be reached or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database said; a bug or corruption, logged.
    #[error("database error: {0}")]
    Database(String),
}

impl RegistryError {
    /// A refused value of `param`.
    pub fn invalid(param: &str, message: impl Into<String>) -> RegistryError {
        RegistryError::Invalid {
            param: Some(param.to_owned()),
            message: message.into(),
        }
    }
}

impl RegistryError {
    /// Refused text or a missing or unknown field at `param`.
    pub fn invalid_field(param: impl Into<String>, message: impl Into<String>) -> RegistryError {
        RegistryError::InvalidField {
            param: param.into(),
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(error: sqlx::Error) -> RegistryError {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                RegistryError::Unavailable(error.to_string())
            }
            other => RegistryError::Database(other.to_string()),
        }
    }
}
