//! The one shared state every handler receives: cheap to clone, built once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::image::Painter;
use super::preview::Previewer;
use crate::cache::ImageCache;
use crate::config::Config;
use crate::incremental::Incremental;
use crate::modifications::Limits;
use crate::pool::RenderPool;
use crate::record::Records;
use crate::registry::Registry;
use crate::render::Renderer;
use crate::request::UserId;
use crate::template::TemplateStore;

/// Handles to everything a request may need.
#[derive(Clone)]
pub struct AppState {
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Active secrets by user.
    pub users: Arc<HashMap<UserId, Vec<String>>>,
    /// Bounds on the modifications of one URL.
    pub limits: Limits,
    /// Prepared templates.
    pub templates: Arc<TemplateStore>,
    /// Fonts and rasteriser.
    pub renderer: Arc<Renderer>,
    /// Rendered images.
    pub cache: ImageCache,
    /// Template bases for incremental renders.
    pub incremental: Arc<Incremental>,
    /// Render slots.
    pub pool: Arc<RenderPool>,
    /// Error pictures by kind of error, each rendered once.
    pub error_images: moka::future::Cache<String, Bytes>,
    /// What the connection loop counts.
    pub connections: Arc<ConnectionStats>,
    /// The certificate registry, served under `/v1` when present; the
    /// image path never reads it.
    pub registry: Option<Registry>,
    /// The registry as the image path sees it, for `/c/` URLs: the one
    /// seam between them.
    pub records: Option<Arc<dyn Records>>,
}

/// Counters of the connection loop, shown by `/healthz`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Connections accepted and not yet closed.
    pub open: AtomicUsize,
    /// Connections accepted since the start.
    pub accepted: AtomicU64,
    /// Connections closed because the peer read nothing for the write
    /// timeout.
    pub write_timeouts: AtomicU64,
    /// Request heads refused before hyper parsed them.
    pub heads_refused: AtomicU64,
}

impl AppState {
    /// What cache misses are rendered with.
    pub fn painter(&self) -> Painter {
        Painter {
            renderer: Arc::clone(&self.renderer),
            incremental: Arc::clone(&self.incremental),
            pool: Arc::clone(&self.pool),
        }
    }

    /// The same state, serving `registry` under `/v1`; the registry
    /// checks certificates against this state's templates and fonts.
    pub fn with_registry(mut self, registry: Registry) -> AppState {
        registry.use_templates(crate::registry::TemplateAccess {
            templates: Arc::clone(&self.templates),
            renderer: Arc::clone(&self.renderer),
            limits: self.limits,
            previews: Arc::new(Previewer {
                templates: Arc::clone(&self.templates),
                cache: self.cache.clone(),
                painter: self.painter(),
            }),
            secrets: Arc::clone(&self.users),
            max_url_bytes: self.config.max_url_bytes,
        });
        self.records = Some(Arc::new(registry.clone()));
        self.registry = Some(registry);
        self
    }

    /// Loads fonts and resolves secrets; fails on anything a server could
    /// not run without.
    pub fn new(config: Config) -> Result<AppState, String> {
        let users = config
            .user_secrets(&|name| std::env::var(name).ok())
            .map_err(|e| e.to_string())?;
        let renderer = Arc::new(Renderer::new(
            &config.fonts_dir,
            &config.extra_fonts,
            config.render_limits(),
        )?);
        let templates = Arc::new(TemplateStore::new(
            config.templates_dir.clone(),
            config.max_template_bytes,
            Arc::clone(&renderer),
        ));
        let pool = Arc::new(RenderPool::new(
            config.render_slots(),
            config.max_waiting_renders,
            Duration::from_millis(config.render_timeout_ms),
        ));
        Ok(AppState {
            limits: Limits {
                max_text_chars: config.max_text_chars,
                max_modifications: config.max_modifications,
            },
            cache: ImageCache::new(
                config.cache_max_bytes,
                Duration::from_millis(config.failure_ttl_ms),
            ),
            error_images: moka::future::Cache::new(256),
            connections: Arc::default(),
            incremental: Arc::new(Incremental::new(config.base_cache_max_bytes)),
            users: Arc::new(users),
            registry: None,
            records: None,
            templates,
            renderer,
            pool,
            config: Arc::new(config),
        })
    }
}
