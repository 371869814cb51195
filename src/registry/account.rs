//! Accounts: the configured users as the registry knows them, with their
//! plan's limits.

use crate::config::UserConfig;

use super::error::RegistryError;

/// An account's plan and the limits it brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// 60 requests a minute per key, batches of 100.
    Standard,
    /// 300 requests a minute per key, batches of 500.
    Professional,
    /// The numbers the configuration gives.
    Custom {
        rate_limit_per_minute: u32,
        batch_size: u32,
    },
}

impl Plan {
    pub fn name(self) -> &'static str {
        match self {
            Plan::Standard => "standard",
            Plan::Professional => "professional",
            Plan::Custom { .. } => "custom",
        }
    }

    pub fn rate_limit_per_minute(self) -> u32 {
        match self {
            Plan::Standard => 60,
            Plan::Professional => 300,
            Plan::Custom {
                rate_limit_per_minute,
                ..
            } => rate_limit_per_minute,
        }
    }

    pub fn batch_size(self) -> u32 {
        match self {
            Plan::Standard => 100,
            Plan::Professional => 500,
            Plan::Custom { batch_size, .. } => batch_size,
        }
    }
}

/// What the registry keeps per account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The `user_id` of signed image URLs.
    pub id: String,
    /// Shown to people: on verification pages, in the dashboard.
    pub name: String,
    pub plan: Plan,
    /// Base of verification links, the account's own domain when set.
    pub public_base_url: Option<String>,
    /// Whether a certificate is e-mailed unless the request says.
    pub email_by_default: bool,
}

impl Account {
    /// The account a configured user describes; refuses a plan it cannot
    /// read, or limits given where the plan sets its own.
    pub fn from_config(user: &UserConfig) -> Result<Account, RegistryError> {
        let invalid = |m: String| RegistryError::Config(format!("user {}: {m}", user.id));
        let custom_numbers = (user.rate_limit_per_minute, user.batch_size);
        let plan = match (user.plan.as_deref().unwrap_or("standard"), custom_numbers) {
            ("standard", (None, None)) => Plan::Standard,
            ("professional", (None, None)) => Plan::Professional,
            ("custom", (Some(rate), Some(batch))) if rate > 0 && batch > 0 => Plan::Custom {
                rate_limit_per_minute: rate,
                batch_size: batch,
            },
            ("custom", _) => {
                return Err(invalid(
                    "plan `custom` needs rate_limit_per_minute and batch_size, both above 0".into(),
                ))
            }
            ("standard" | "professional", _) => {
                return Err(invalid(
                    "rate_limit_per_minute and batch_size are for plan `custom` only".into(),
                ))
            }
            (other, _) => {
                return Err(invalid(format!(
                    "plan `{other}` is not standard, professional or custom"
                )))
            }
        };
        if let Some(url) = &user.public_base_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid(format!(
                    "public_base_url `{url}` must start with https:// or http://"
                )));
            }
        }
        Ok(Account {
            id: user.id.clone(),
            name: user.name.clone().unwrap_or_else(|| user.id.clone()),
            plan,
            public_base_url: user
                .public_base_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            email_by_default: user.email_by_default.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(plan: Option<&str>, rate: Option<u32>, batch: Option<u32>) -> UserConfig {
        UserConfig {
            id: "u".into(),
            plan: plan.map(String::from),
            rate_limit_per_minute: rate,
            batch_size: batch,
            ..UserConfig::default()
        }
    }

    #[test]
    fn plans_bring_their_limits_and_custom_needs_both_numbers() {
        let standard = Account::from_config(&user(None, None, None)).unwrap();
        assert_eq!(standard.plan.rate_limit_per_minute(), 60);
        assert_eq!(standard.name, "u");
        let pro = Account::from_config(&user(Some("professional"), None, None)).unwrap();
        assert_eq!(
            (pro.plan.rate_limit_per_minute(), pro.plan.batch_size()),
            (300, 500)
        );
        let custom = Account::from_config(&user(Some("custom"), Some(7), Some(9))).unwrap();
        assert_eq!(custom.plan.rate_limit_per_minute(), 7);
        assert!(Account::from_config(&user(Some("custom"), Some(7), None)).is_err());
        assert!(Account::from_config(&user(Some("gold"), None, None)).is_err());
    }
}
