//! Certificates as their images show them: the registry's side of the
//! seam `record::Records`, through which the image path learns a
//! certificate's template, the edits its name and fields make, and its
//! standing.
//!
//! Answers are kept for `record::MAX_STALENESS_MS` at most, so a hit on
//! a popular certificate costs no database read, and a change made by any
//! process shows on every process's images within that time; a change
//! made here is forgotten at once. Failures to read are never kept.

use std::sync::Arc;
use std::time::Duration;

use super::{status_of, Declaration, Status};
use crate::modifications::Modification;
use crate::record::{
    Lookup, RecordView, Records, Standing, Unavailable, Visitor, MAX_STALENESS_MS,
};
use crate::registry::error::RegistryError;
use crate::registry::store::{now_us, CertificateRecord};
use crate::registry::Registry;
use crate::request::{BaseId, UserId};

/// Most certificates whose view is kept at once.
const MAX_VIEWS: u64 = 100_000;

/// The views read lately, by certificate id (`None`: no such one).
pub type Views = moka::future::Cache<String, Option<Arc<RecordView>>>;

/// An empty cache of views, each kept at most `MAX_STALENESS_MS`.
pub fn views() -> Views {
    moka::future::Cache::builder()
        .max_capacity(MAX_VIEWS)
        .time_to_live(Duration::from_millis(MAX_STALENESS_MS))
        .build()
}

impl Registry {
    /// Drops what is kept of certificate `id`'s view, after a change
    /// (committed, with its outbox event: the webhook worker is woken
    /// for it rather than left to its next poll).
    pub(crate) async fn forget_view(&self, id: &str) {
        self.views.invalidate(id).await;
        self.events_appended();
    }

    /// The view of certificate `id`, read now.
    async fn read_view(&self, id: &str) -> Result<Option<Arc<RecordView>>, RegistryError> {
        let Some(record) = self.store.certificate_by_id(id).await? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(self.view_of(&record).await?)))
    }

    /// What `record` draws with its template as it is now. A field the
    /// template no longer takes is left out; an unknown template leaves
    /// the edits empty (the image path then reports it missing).
    async fn view_of(&self, record: &CertificateRecord) -> Result<RecordView, RegistryError> {
        let bad =
            |what: &str| RegistryError::Database(format!("certificate {}: {what}", record.id));
        let account = UserId::parse(&record.account_id).map_err(|_| bad("account id"))?;
        let template = BaseId::parse(&record.template_id).map_err(|_| bad("template id"))?;
        let access = self.templates()?;
        let mut edits = Vec::new();
        if let Ok(prepared) = access.templates.get(&account, &template).await {
            if let Ok(declaration) = Declaration::of(&prepared) {
                edits.push(Modification::text(
                    &declaration.name_layer,
                    &record.recipient_name,
                ));
                for field in &declaration.fields {
                    if let Some(value) = record.fields.get(&field.name) {
                        edits.extend(field.layers.iter().map(|l| Modification::text(l, value)));
                    }
                }
            }
        }
        let standing = match status_of(record, now_us()) {
            Status::Issued => Standing::Issued,
            Status::Suspended => Standing::Suspended,
            Status::Revoked => Standing::Revoked,
            Status::Expired => Standing::Expired,
        };
        Ok(RecordView {
            account,
            template,
            edits,
            standing,
            livemode: record.environment.is_live(),
        })
    }
}

impl Records for Registry {
    fn find<'a>(&'a self, id: &'a str) -> Lookup<'a> {
        Box::pin(async move {
            let view = self
                .views
                .try_get_with_by_ref(id, self.read_view(id))
                .await
                .map_err(|error| {
                    tracing::warn!(%error, "a certificate could not be read for its image");
                    Unavailable
                })?;
            Ok(view)
        })
    }

    fn viewed(&self, id: &str, view: &RecordView, visitor: Visitor<'_>) {
        let seen = crate::registry::webhook::views::Seen {
            certificate_id: id,
            account_id: view.account.as_str(),
            livemode: view.livemode,
        };
        self.count_public(
            "certificate.viewed",
            seen,
            visitor.client,
            visitor.headers,
            &[],
        );
    }
}
