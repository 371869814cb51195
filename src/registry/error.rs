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
    /// A batch of more rows than the account's plan (or any batch) may
    /// hold.
    #[error("a batch holds at most {limit} rows")]
    BatchTooLarge { limit: usize },
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
        if is_unreachable(&error) {
            RegistryError::Unavailable(error.to_string())
        } else {
            RegistryError::Database(error.to_string())
        }
    }
}

/// Whether `error` says the database cannot be reached just now, rather
/// than that a statement or the data is wrong: the caller is then told
/// to try again (a `503`), not that the server broke (a `500`). A
/// database going away shows in three ways: no connection to be had in
/// time, the socket failing under a statement, or the server's own
/// farewell on a live connection (a SQLSTATE, below).
/// SQLite's "database is locked" (`SQLITE_BUSY`, 5, and its extended
/// codes such as 261 and 517): the write lock was not had within the busy
/// timeout. A passing state under load, answered as unavailable.
fn is_sqlite_busy(code: &str) -> bool {
    code.parse::<i64>().is_ok_and(|n| n & 0xff == 5)
}

fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(error) => {
            let sqlite = error
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some();
            error.code().is_some_and(|code| {
                if sqlite {
                    is_sqlite_busy(&code)
                } else {
                    is_outage_sqlstate(&code)
                }
            })
        }
        _ => false,
    }
}

/// PostgreSQL's SQLSTATEs of a server that stops or refuses sessions:
/// class `08` (connection exception), `57P01` admin_shutdown (what
/// `pg_ctl stop` or a terminated backend sends to every open session),
/// `57P02` crash_shutdown, `57P03` cannot_connect_now (starting up or
/// shutting down) and `53300` too_many_connections. SQLite's codes are
/// numbers none of these match.
fn is_outage_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;

    use super::*;

    /// A database's error with a given SQLSTATE, as a driver reports it.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl StdError for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            "coded"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn mapped(code: &'static str) -> RegistryError {
        RegistryError::from(sqlx::Error::Database(Box::new(Coded(code))))
    }

    #[test]
    fn a_server_shutting_down_or_refusing_sessions_is_unavailable() {
        for code in [
            "57P01", "57P02", "57P03", "08006", "08001", "08003", "53300",
        ] {
            assert!(
                matches!(mapped(code), RegistryError::Unavailable(_)),
                "{code}"
            );
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            RegistryError::from(sqlx::Error::Io(refused)),
            RegistryError::Unavailable(_)
        ));
        assert!(matches!(
            RegistryError::from(sqlx::Error::PoolTimedOut),
            RegistryError::Unavailable(_)
        ));
    }

    #[test]
    fn a_refused_statement_stays_a_database_error() {
        // A unique violation, a syntax error, SQLite's constraint and
        // busy codes: bugs or contention, not an outage.
        for code in ["23505", "42601", "2067", "5", "57014"] {
            assert!(matches!(mapped(code), RegistryError::Database(_)), "{code}");
        }
        assert!(matches!(
            RegistryError::from(sqlx::Error::RowNotFound),
            RegistryError::Database(_)
        ));
    }
}
