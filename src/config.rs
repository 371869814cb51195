//! Server configuration: defaults, then a TOML file, then `SIGNET_*`
//! environment overrides, in that order.
//!
//! The file format is the config contract of the protocol spec; every key
//! has a default so that a server with no configuration at all starts in
//! demo mode on the templates it ships.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::request::UserId;
use crate::secret::{Secret, RECOMMENDED_BYTES};

/// The demo account: the same ids the spec and the reference client use in
/// their examples, so a copied example works against the demo server.
pub const DEMO_USER: &str = "be6a052e-bce8-4c14-8bbb-ea6b6f9941d5";
/// The demo secret. Public by design: demo mode is for trying Signet out.
pub const DEMO_SECRET: &str = "secretzzzz";
/// The demo certificate template.
pub const DEMO_TEMPLATE: &str = "TEafv3AfNptmzii4zj2jkc";

/// Why a configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Everything the server needs to know at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: String,
    /// Folder of `<user_id>/<base_id>.svg` templates.
    pub templates_dir: PathBuf,
    /// Folder of fonts loaded once at start.
    pub fonts_dir: PathBuf,
    /// Installed font files loaded too when present (CJK and emoji are too
    /// large to ship; Debian's `fonts-noto-cjk` and `fonts-noto-color-emoji`
    /// put them at the default paths).
    pub extra_fonts: Vec<PathBuf>,
    /// Bound on the bytes of rendered images kept in memory.
    pub cache_max_bytes: u64,
    /// Bound on the bytes of template bases kept for incremental rendering
    /// (about 6 bytes per output pixel each); 0 renders every miss whole.
    pub base_cache_max_bytes: u64,
    /// The accounts and their signing secrets.
    pub users: Vec<UserConfig>,
    /// Longest accepted request target (path and query), in bytes.
    pub max_url_bytes: usize,
    /// Longest accepted text of one modification, in characters.
    pub max_text_chars: usize,
    /// Most modifications accepted in one URL.
    pub max_modifications: usize,
    /// Largest template file accepted, in bytes.
    pub max_template_bytes: u64,
    /// Most XML nodes a template may hold.
    pub max_template_nodes: u32,
    /// Largest output image, in pixels (width × height); also bounds
    /// embedded raster images.
    pub max_pixels: u64,
    /// Largest embedded raster image file, in bytes.
    pub max_image_bytes: u64,
    /// Most pixels an image given in a URL (`src`) may decode to; a layer
    /// with a box takes at most twice its size at the output scale on
    /// each axis.
    pub max_image_pixels: u64,
    /// Memory that renders, base builds and image decodes may hold at once
    /// (each is leased its estimated peak before it allocates); a render
    /// needing more than all of it is refused as too large.
    pub render_memory_bytes: u64,
    /// Renders running at once; 0 means one per CPU.
    pub render_concurrency: usize,
    /// Renders allowed to wait for a slot before the server answers 503.
    pub max_waiting_renders: usize,
    /// Time after which a render is abandoned and answered as failed.
    pub render_timeout_ms: u64,
    /// How long a failed render is remembered before it is tried again.
    pub failure_ttl_ms: u64,
    /// Time a client has to send its request headers.
    pub header_read_timeout_ms: u64,
    /// Time a response may wait for the client to read any of it before
    /// the connection is closed.
    pub write_timeout_ms: u64,
    /// Connections served at once; past it the server stops accepting
    /// until one closes.
    pub max_connections: usize,
    /// `Cache-Control` of successful image responses.
    pub cache_control: String,
    /// Folder of the registry's SQLite database (`registry.sqlite3`),
    /// created at start; unused when `database_url` is set.
    pub data_dir: PathBuf,
    /// `postgres://…` to keep the registry in PostgreSQL, shared by every
    /// server process using it; unset for SQLite under `data_dir`.
    pub database_url: Option<String>,
    /// Base of the error pages the registry's `documentation_url` points
    /// at (`<base>/errors#<code>`).
    pub api_docs_url: String,
    /// `[webhooks]`: deliveries, their SSRF guard and the viewed counts
    /// (`registry::webhook::settings`).
    pub webhooks: crate::registry::webhook::WebhookConfig,
    /// Set by the loader, never by the file: true when no config was given.
    #[serde(skip)]
    pub demo: bool,
}

/// One account as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The account id that appears in URLs.
    pub id: String,
    /// Active secrets; any of them verifies a URL (rotation). Redacted in
    /// `Debug` output.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// Name of an environment variable holding comma-separated secrets.
    #[serde(default)]
    pub secrets_env: Option<String>,
    /// The registry's display name of the account (default: its id).
    #[serde(default)]
    pub name: Option<String>,
    /// `standard` (the default: 60 requests a minute, batches of 100),
    /// `professional` (300, 500) or `custom` (the two numbers below).
    #[serde(default)]
    pub plan: Option<String>,
    /// Requests a minute per API key, for the `custom` plan.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
    /// Most certificates in one batch, for the `custom` plan.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Base of the account's verification links
    /// (`https://credentials.example.org`).
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// Whether certificates are e-mailed unless a request says otherwise
    /// (default: false).
    #[serde(default)]
    pub email_by_default: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            templates_dir: "templates".into(),
            fonts_dir: "fonts".into(),
            extra_fonts: DEFAULT_EXTRA_FONTS.iter().map(PathBuf::from).collect(),
            cache_max_bytes: 256 * 1024 * 1024,
            base_cache_max_bytes: 64 * 1024 * 1024,
            users: Vec::new(),
            max_url_bytes: 16 * 1024,
            max_text_chars: 1000,
            max_modifications: 64,
            max_template_bytes: 4 * 1024 * 1024,
            max_template_nodes: 100_000,
            max_pixels: 25_000_000,
            max_image_bytes: 8 * 1024 * 1024,
            max_image_pixels: 4 * 1024 * 1024,
            render_memory_bytes: 512 * 1024 * 1024,
            render_concurrency: 0,
            max_waiting_renders: 64,
            render_timeout_ms: 10_000,
            failure_ttl_ms: 10_000,
            header_read_timeout_ms: 10_000,
            write_timeout_ms: 30_000,
            max_connections: 1024,
            cache_control: "public, max-age=86400, stale-while-revalidate=604800".into(),
            data_dir: "data".into(),
            database_url: None,
            api_docs_url: "https://signet.example.org/docs/api".into(),
            webhooks: Default::default(),
            demo: false,
        }
    }
}

/// Where Debian's font packages install the fonts too large to ship:
/// Chinese, Japanese and Korean (`fonts-noto-cjk`), colour emoji
/// (`fonts-noto-color-emoji`), and the scripts `fonts/` has no face for
/// (`fonts-noto-core`), regular and bold so a bold name stays bold. In this
/// order they come after `fonts/` in the fallback order.
pub const DEFAULT_EXTRA_FONTS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArmenian-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArmenian-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansBengali-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansBengali-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansEthiopic-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansEthiopic-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansGeorgian-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansGeorgian-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansGujarati-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansGujarati-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansGurmukhi-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansGurmukhi-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansKannada-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansKannada-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansKhmer-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansKhmer-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansLao-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansLao-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMalayalam-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMalayalam-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMyanmar-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMyanmar-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansSinhala-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansSinhala-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansTamil-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansTamil-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansTelugu-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansTelugu-Bold.ttf",
];

/// Keys that `SIGNET_<KEY>` may override; `users` is too structured for an
/// environment variable.
const ENV_KEYS: &[&str] = &[
    "listen",
    "templates_dir",
    "fonts_dir",
    "cache_max_bytes",
    "base_cache_max_bytes",
    "max_url_bytes",
    "max_text_chars",
    "max_modifications",
    "max_template_bytes",
    "max_template_nodes",
    "max_pixels",
    "max_image_bytes",
    "max_image_pixels",
    "render_memory_bytes",
    "render_concurrency",
    "max_waiting_renders",
    "render_timeout_ms",
    "failure_ttl_ms",
    "header_read_timeout_ms",
    "write_timeout_ms",
    "max_connections",
    "cache_control",
    "data_dir",
    "database_url",
    "api_docs_url",
];

/// First path segments the server answers itself (the registry API, the
/// health check, certificate images), so no account may have them as id.
const RESERVED_USER_IDS: &[&str] = &["v1", "healthz", "c"];

/// Environment variables with the prefix that are not config keys.
/// (`SIGNET_FUZZ_*` steer the fuzz test, which may run beside the CLI's.)
const ENV_OTHER: &[&str] = &[
    "SIGNET_LOG",
    "SIGNET_CONFIG",
    "SIGNET_FUZZ_SECS",
    "SIGNET_FUZZ_SEED",
];

impl Config {
    /// Loads `path`, or the demo configuration when `path` is `None`, then
    /// applies the `SIGNET_*` variables of `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (mut table, base_dir) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                    ConfigError::Invalid(syntax_error(path, &text, &e))
                })?;
                let dir = path.parent().map(Path::to_owned).unwrap_or_default();
                (table, Some(dir))
            }
            None => (toml::Table::new(), None),
        };
        let env: Vec<(String, String)> = env.into_iter().collect();
        apply_env(&mut table, &env)?;
        let mut config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))?;
        if path.is_none() {
            config.demo = true;
            config.users = vec![UserConfig {
                id: DEMO_USER.into(),
                secrets: vec![DEMO_SECRET.into()],
                name: Some("Demo account".into()),
                ..UserConfig::default()
            }];
        }
        // Paths in a file are relative to the file, so a service started
        // from any working directory finds the same folders.
        if let Some(dir) = base_dir {
            let from_env = |key: &str| env.iter().any(|(k, _)| k == &env_name(key));
            if !from_env("templates_dir") {
                config.templates_dir = dir.join(&config.templates_dir);
            }
            if !from_env("fonts_dir") {
                config.fonts_dir = dir.join(&config.fonts_dir);
            }
            if !from_env("data_dir") {
                config.data_dir = dir.join(&config.data_dir);
            }
            for font in &mut config.extra_fonts {
                *font = dir.join(&*font);
            }
        }
        config.check()?;
        Ok(config)
    }

    /// The renderer's bounds.
    pub fn render_limits(&self) -> crate::render::RenderLimits {
        crate::render::RenderLimits {
            max_pixels: self.max_pixels,
            max_image_bytes: self.max_image_bytes,
            max_image_pixels: self.max_image_pixels,
            max_memory_bytes: self.render_memory_bytes,
            memory_wait: std::time::Duration::from_millis(self.render_timeout_ms),
            max_nodes: self.max_template_nodes,
        }
    }

    /// The configuration the tests and library users build in code.
    pub fn for_dirs(templates_dir: PathBuf, fonts_dir: PathBuf) -> Config {
        Config {
            templates_dir,
            fonts_dir,
            ..Config::default()
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        self.webhooks.check().map_err(ConfigError::Invalid)?;
        if self.max_pixels == 0
            || self.max_url_bytes == 0
            || self.render_timeout_ms == 0
            || self.render_memory_bytes == 0
        {
            return invalid(
                "max_pixels, max_url_bytes, render_timeout_ms and render_memory_bytes must be above 0"
                    .into(),
            );
        }
        if !self.demo && self.users.is_empty() {
            return invalid("no [[users]]: nobody could sign a URL".into());
        }
        Ok(())
    }

    /// The users with their active secrets, with `secrets_env` resolved.
    pub fn user_secrets(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<HashMap<UserId, Vec<String>>, ConfigError> {
        let mut users = HashMap::new();
        for user in &self.users {
            let id = UserId::parse(&user.id).map_err(|_| {
                ConfigError::Invalid(format!(
                    "user id `{}` must be 1 to 64 of A-Z a-z 0-9 _ -",
                    user.id
                ))
            })?;
            if RESERVED_USER_IDS.contains(&user.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "user id `{}` is reserved: /{}/ is a path of the server's own",
                    user.id, user.id
                )));
            }
            let mut secrets: Vec<String> =
                user.secrets.iter().map(|s| s.expose().to_owned()).collect();
            if let Some(name) = &user.secrets_env {
                let value = env(name).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "user {}: environment variable {name} is not set",
                        user.id
                    ))
                })?;
                secrets.extend(value.split(',').map(str::trim).map(String::from));
            }
            secrets.retain(|s| !s.is_empty());
            if secrets.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "user {} has no secret",
                    user.id
                )));
            }
            if !self.demo && secrets.iter().any(|s| s.len() < RECOMMENDED_BYTES) {
                tracing::warn!(
                    user = %user.id,
                    "a secret is shorter than {RECOMMENDED_BYTES} bytes; use a longer random one"
                );
            }
            if users.insert(id, secrets).is_some() {
                return Err(ConfigError::Invalid(format!(
                    "user {} is listed twice",
                    user.id
                )));
            }
        }
        Ok(users)
    }

    /// Render slots: the configured number, or one per CPU.
    pub fn render_slots(&self) -> usize {
        if self.render_concurrency > 0 {
            self.render_concurrency
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

/// A TOML syntax error by line and column with the parser's message, but
/// not the excerpt of the file the parser's own text quotes: the line may
/// hold a secret.
fn syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> String {
    let at = error.span().map_or(0, |span| span.start.min(text.len()));
    let before = text.get(..at).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(
        "{}, line {line}, column {column}: {}",
        path.display(),
        error.message()
    )
}

fn env_name(key: &str) -> String {
    format!("SIGNET_{}", key.to_ascii_uppercase())
}

fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("SIGNET_") else {
            continue;
        };
        if ENV_OTHER.contains(&name.as_str()) {
            continue;
        }
        let key = rest.to_ascii_lowercase();
        if !ENV_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "{name} is not a configuration override (known: {})",
                ENV_KEYS
                    .iter()
                    .map(|k| env_name(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // Numbers stay numbers; anything else is taken as a string, so
        // SIGNET_LISTEN=0.0.0.0:8080 needs no TOML quoting.
        let parsed = value
            .parse::<i64>()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(value.clone()));
        table.insert(key, parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_malformed_file_is_reported_without_quoting_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(
            &path,
            "[[users]]\nid = \"a\"\nsecrets = \"s3cr3t-value-do-not-print\n",
        )
        .unwrap();
        let err = Config::load(Some(&path), vars(&[]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn an_account_id_the_server_routes_itself_is_refused() {
        let mut config = Config::default();
        config.users.push(UserConfig {
            id: "v1".into(),
            secrets: vec!["a-long-enough-secret-for-the-test-0001".into()],
            secrets_env: None,
            ..UserConfig::default()
        });
        let err = config.user_secrets(&|_| None).unwrap_err().to_string();
        assert!(err.contains("`v1` is reserved"), "{err}");
    }

    #[test]
    fn debug_output_of_a_config_never_holds_a_secret() {
        let mut config = Config::default();
        config.users.push(UserConfig {
            id: "a".into(),
            secrets: vec!["s3cr3t-value-do-not-print".into()],
            ..UserConfig::default()
        });
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn no_config_means_demo_mode_with_the_demo_user() {
        let config = Config::load(None, vars(&[])).unwrap();
        assert!(config.demo);
        let users = config.user_secrets(&|_| None).unwrap();
        let demo = UserId::parse(DEMO_USER).unwrap();
        assert_eq!(users[&demo], vec![DEMO_SECRET.to_string()]);
    }

    #[test]
    fn environment_overrides_win_over_defaults() {
        let config = Config::load(
            None,
            vars(&[
                ("SIGNET_LISTEN", "0.0.0.0:9000"),
                ("SIGNET_CACHE_MAX_BYTES", "1024"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.cache_max_bytes, 1024);
    }

    #[test]
    fn a_misspelt_override_is_refused() {
        let err = Config::load(None, vars(&[("SIGNET_CACHE_MAX", "1")])).unwrap_err();
        assert!(err.to_string().contains("SIGNET_CACHE_MAX"), "{err}");
    }

    #[test]
    fn a_file_with_an_unknown_key_is_refused_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(&path, "cache_max_byte = 5\n").unwrap();
        let err = Config::load(Some(&path), vars(&[])).unwrap_err();
        assert!(err.to_string().contains("cache_max_byte"), "{err}");

        std::fs::write(
            &path,
            "templates_dir = \"t\"\n[[users]]\nid = \"u1\"\nsecrets_env = \"K\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&path), vars(&[])).unwrap();
        assert!(!config.demo);
        assert_eq!(config.templates_dir, dir.path().join("t"));
        let users = config
            .user_secrets(&|name| (name == "K").then(|| "a, b".to_string()))
            .unwrap();
        assert_eq!(users[&UserId::parse("u1").unwrap()], vec!["a", "b"]);
    }

    #[test]
    fn a_user_without_secrets_is_refused() {
        let mut config = Config::default();
        config.users.push(UserConfig {
            id: "u".into(),
            secrets: vec!["".into()],
            ..UserConfig::default()
        });
        assert!(config.user_secrets(&|_| None).is_err());
    }

    #[test]
    fn a_webhooks_section_is_read_from_the_file_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        let users = "[[users]]\nid = \"u1\"\nsecrets = [\"s\"]\n";
        std::fs::write(
            &path,
            format!("{users}[webhooks]\nallow_private_networks = true\n"),
        )
        .unwrap();
        let config = Config::load(Some(&path), vars(&[])).unwrap();
        assert!(config.webhooks.allow_private_networks);
        assert!(!Config::default().webhooks.allow_private_networks);
        std::fs::write(&path, format!("{users}[webhooks]\ntimeout_ms = 0\n")).unwrap();
        let err = Config::load(Some(&path), vars(&[])).unwrap_err();
        assert!(err.to_string().contains("timeout_ms"), "{err}");
    }
}
