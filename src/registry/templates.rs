//! An account's templates as the API shows them: the size, the layer the
//! recipient's name goes into, the fields a certificate supplies, and a
//! preview image; and what `/v1/sign` checks and signs a template's URLs
//! with.
//!
//! The registry draws nothing itself: a preview comes through
//! [`Previews`], which the image side implements with its renderer,
//! cache and render pool.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::modifications::Limits;
use crate::registry::certificate::Declaration;
use crate::registry::error::RegistryError;
use crate::registry::Registry;
use crate::request::{BaseId, UserId};
use crate::template::TemplateError;

/// Most templates of one account the API lists.
pub const MAX_TEMPLATES: usize = 10_000;

/// A template as the API describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateInfo {
    pub id: String,
    pub width: f32,
    pub height: f32,
    pub declaration: Declaration,
}

/// What `/v1/sign` signs an account's URLs with.
#[derive(Debug, Clone)]
pub struct SigningTerms {
    /// The account's first active secret, as `signet sign` uses.
    pub secret: String,
    /// The bounds on modifications that signed URLs have.
    pub limits: Limits,
    /// The longest request target the image side reads.
    pub max_url_bytes: usize,
}

/// A rendered preview: a PNG and the tag of its version.
#[derive(Debug, Clone)]
pub struct Preview {
    pub png: Bytes,
    pub etag: String,
}

/// Why no preview could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewError {
    NotFound,
    /// The template or its render is refused; the reason.
    Rejected(String),
    /// No render slot or memory now; try again.
    Busy,
}

/// A boxed future of [`Previews`], so the trait stays object-safe.
pub type PreviewFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Preview, PreviewError>> + Send + 'a>>;

/// Drawing a template's preview: the image side's renderer, cache and
/// pool, given to the registry with the templates.
pub trait Previews: Send + Sync {
    /// The template `template` of `account` drawn with its own text.
    fn preview<'a>(&'a self, account: &'a UserId, template: &'a BaseId) -> PreviewFuture<'a>;
}

impl Registry {
    /// The usable templates of `account`, by id: those that prepare and
    /// declare a name layer. An unusable file is left out (and logged by
    /// the template store).
    pub async fn templates_of(&self, account: &str) -> Result<Vec<TemplateInfo>, RegistryError> {
        let access = self.templates()?;
        let Ok(user) = UserId::parse(account) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        for id in access.templates.ids(&user, MAX_TEMPLATES).await {
            if let Ok(info) = self.template_info(account, id.as_str()).await {
                found.push(info);
            }
        }
        Ok(found)
    }

    /// Template `id` of `account`; `NotFound` when it does not exist,
    /// `InvalidTemplate` (with the reason) when it cannot be used.
    pub async fn template_info(
        &self,
        account: &str,
        id: &str,
    ) -> Result<TemplateInfo, RegistryError> {
        let access = self.templates()?;
        let not_found = || RegistryError::NotFound {
            kind: "template",
            id: id.to_owned(),
        };
        let user = UserId::parse(account).map_err(|_| not_found())?;
        let base = BaseId::parse(id).map_err(|_| not_found())?;
        let template = access
            .templates
            .get(&user, &base)
            .await
            .map_err(|error| match error {
                TemplateError::NotFound => not_found(),
                TemplateError::Rejected(why) => {
                    RegistryError::InvalidTemplate(format!("Template {id} is unusable: {why}"))
                }
            })?;
        let declaration = Declaration::of(&template)?;
        let size = template.size();
        Ok(TemplateInfo {
            id: id.to_owned(),
            width: size.width(),
            height: size.height(),
            declaration,
        })
    }

    /// Refuses, as `InvalidTemplate`, a template `id` that `account` does
    /// not have or that cannot be rendered: a URL signed for it would only
    /// ever answer an error.
    pub async fn check_signable(&self, account: &str, id: &str) -> Result<(), RegistryError> {
        let access = self.templates()?;
        let missing = || RegistryError::InvalidTemplate(format!("Template {id} does not exist"));
        let user = UserId::parse(account).map_err(|_| missing())?;
        let base = BaseId::parse(id).map_err(|_| missing())?;
        match access.templates.get(&user, &base).await {
            Ok(_) => Ok(()),
            Err(TemplateError::NotFound) => Err(missing()),
            Err(TemplateError::Rejected(why)) => Err(RegistryError::InvalidTemplate(format!(
                "Template {id} is unusable: {why}"
            ))),
        }
    }

    /// What a URL of `account` is signed with: its first active secret,
    /// and the bounds the image side applies to what it is signed over.
    pub fn signing_terms(&self, account: &str) -> Result<SigningTerms, RegistryError> {
        let access = self.templates()?;
        let secret = UserId::parse(account)
            .ok()
            .and_then(|user| access.secrets.get(&user))
            .and_then(|secrets| secrets.first())
            .ok_or_else(|| RegistryError::Config(format!("account {account} has no secret")))?;
        Ok(SigningTerms {
            secret: secret.clone(),
            limits: access.limits,
            max_url_bytes: access.max_url_bytes,
        })
    }

    /// The preview of template `id` of `account`.
    pub async fn template_preview(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Result<Preview, PreviewError>, RegistryError> {
        let access = self.templates()?;
        let (Ok(user), Ok(base)) = (UserId::parse(account), BaseId::parse(id)) else {
            return Ok(Err(PreviewError::NotFound));
        };
        Ok(access.previews.preview(&user, &base).await)
    }
}
