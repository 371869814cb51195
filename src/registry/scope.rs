//! What a key may do: its scopes.

/// Every scope a key may be given. `*` grants all of them.
pub const SCOPES: &[&str] = &[
    "certificates:read",
    "certificates:write",
    "batches:write",
    "sign",
    "webhooks:write",
    "keys:write",
    "audit:read",
    "*",
];

/// A key's scopes, checked names only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// The scopes named, each known; `None` names the first unknown one.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Scopes, String> {
        let mut scopes: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            if !SCOPES.contains(&name) {
                return Err(name.to_owned());
            }
            if !scopes.iter().any(|s| s == name) {
                scopes.push(name.to_owned());
            }
        }
        Ok(Scopes(scopes))
    }

    /// As stored: space-separated.
    pub fn from_stored(text: &str) -> Scopes {
        Scopes(text.split_whitespace().map(String::from).collect())
    }

    pub fn to_stored(&self) -> String {
        self.0.join(" ")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// True when `scope` (never `*` itself) is granted.
    pub fn allows(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope || s == "*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_allows_everything_and_a_named_scope_only_itself() {
        let all = Scopes::parse(&["*"]).unwrap();
        assert!(all.allows("audit:read"));
        let read = Scopes::parse(&["certificates:read"]).unwrap();
        assert!(read.allows("certificates:read") && !read.allows("keys:write"));
        assert_eq!(Scopes::parse(&["keys:wrote"]), Err("keys:wrote".into()));
    }
}
