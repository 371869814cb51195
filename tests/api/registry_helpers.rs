//! Registry test harness: a server with a registry on SQLite or on a real
//! PostgreSQL (a throwaway cluster from Debian's `postgresql`, one per
//! test binary run, one database per test), keys made as the CLI makes
//! them, and `/v1` requests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use signet::config::{Config, UserConfig};
use signet::http::{serve, AppState};
use signet::registry::scope::Scopes;
use signet::registry::{Actor, Environment, Registry};
use tempfile::TempDir;

use crate::helpers::{repo, CERT, OTHER_SECRET, OTHER_USER, SECRET, USER};

/// Where PostgreSQL's server programs are: Debian's newest installed
/// major version (`/usr/lib/postgresql/<major>/bin`).
fn pg_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .map_or_else(|| PathBuf::from("/usr/lib/postgresql/bin"), |(_, bin)| bin)
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs `$test(db)` as `on_sqlite` and `on_postgres`, in a module named
/// by the sentence the test states.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, $test:path) => {
        mod $name {
            #[tokio::test]
            async fn on_sqlite() {
                $test($crate::registry_helpers::Db::Sqlite).await
            }
            #[tokio::test]
            async fn on_postgres() {
                $test($crate::registry_helpers::Db::Postgres).await
            }
        }
    };
}

/// A running server with a registry.
pub struct RegistryApp {
    pub base: String,
    pub registry: Registry,
    pub client: reqwest::Client,
    /// Where the SQLite file lives (kept for the test's life).
    pub data: TempDir,
    pub database_url: Option<String>,
    /// What it was started with, for a restart.
    config: Config,
    _templates: TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// The configuration of a registry test server: two users, the second
/// on a custom plan of `other_rate` requests a minute.
pub fn registry_config(db: Db, data: &Path, templates: &Path) -> Config {
    let mut config = Config::for_dirs(templates.to_owned(), repo().join("fonts"));
    // Registry tests draw nothing: the installed fonts would only slow
    // the start.
    config.extra_fonts = Vec::new();
    config.data_dir = data.to_owned();
    config.database_url = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(new_postgres_database()),
    };
    config.api_docs_url = "https://docs.test/api".into();
    config.users = vec![
        UserConfig {
            id: USER.into(),
            secrets: vec![SECRET.into()],
            name: Some("Demo Academy".into()),
            ..UserConfig::default()
        },
        UserConfig {
            id: OTHER_USER.into(),
            secrets: vec![OTHER_SECRET.into()],
            plan: Some("custom".into()),
            rate_limit_per_minute: Some(4),
            batch_size: Some(10),
            ..UserConfig::default()
        },
    ];
    config
}

pub async fn spawn_registry(db: Db) -> RegistryApp {
    let data = tempfile::tempdir().unwrap();
    let templates = tempfile::tempdir().unwrap();
    let config = registry_config(db, data.path(), templates.path());
    spawn_on(config, data, templates).await
}

/// A registry server whose template folder holds the repository's demo
/// templates of `USER` (and the demo certificate for `OTHER_USER`, whose
/// links use its `public_base_url`), for certificates to be issued
/// against.
pub async fn spawn_registry_with_templates(db: Db) -> RegistryApp {
    spawn_registry_with_templates_and(db, |_| {}).await
}

/// The same, with the configuration changed by `edit` first (a plan's
/// limits, say).
pub async fn spawn_registry_with_templates_and(
    db: Db,
    edit: impl FnOnce(&mut Config),
) -> RegistryApp {
    let data = tempfile::tempdir().unwrap();
    let templates = tempfile::tempdir().unwrap();
    let folder = templates.path().join(USER);
    std::fs::create_dir_all(&folder).unwrap();
    for entry in std::fs::read_dir(repo().join("templates").join(USER)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), folder.join(entry.file_name())).unwrap();
        }
    }
    // The other account has the demo certificate only, and its own
    // domain for links.
    let other = templates.path().join(OTHER_USER);
    std::fs::create_dir_all(&other).unwrap();
    let demo = format!("{CERT}.svg");
    std::fs::copy(folder.join(&demo), other.join(&demo)).unwrap();
    let mut config = registry_config(db, data.path(), templates.path());
    config.users[1].public_base_url = Some("https://credentials.example.org/".into());
    edit(&mut config);
    spawn_on(config, data, templates).await
}

/// A second server process's worth of server on the same database and
/// templates.
pub async fn spawn_beside(first: &RegistryApp) -> RegistryApp {
    let data = tempfile::tempdir().unwrap();
    let templates = tempfile::tempdir().unwrap();
    let mut config = registry_config(Db::Sqlite, first.data.path(), first._templates.path());
    config.database_url = first.database_url.clone();
    spawn_on(config, data, templates).await
}

async fn spawn_on(config: Config, data: TempDir, templates: TempDir) -> RegistryApp {
    let database_url = config.database_url.clone();
    let registry = Registry::open(&config).await.expect("registry opens");
    let state = AppState::new(config.clone())
        .expect("state builds")
        .with_registry(registry.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(serve(listener, state, async {
        let _ = rx.await;
    }));
    RegistryApp {
        base: format!("http://{addr}/v1"),
        registry,
        client: reqwest::Client::new(),
        data,
        database_url,
        config,
        _templates: templates,
        _shutdown: tx,
    }
}

impl RegistryApp {
    /// The folder holding one folder of templates per account.
    pub fn templates_dir(&self) -> &Path {
        self._templates.path()
    }

    /// The same registry after a restart: this server told to stop and
    /// its database pool closed, then a new one opened on the same
    /// database, configuration and templates, so nothing is carried over
    /// in memory.
    pub async fn restart(self) -> RegistryApp {
        let RegistryApp {
            registry,
            data,
            config,
            _templates: templates,
            _shutdown: shutdown,
            ..
        } = self;
        drop(shutdown);
        registry.store.close().await;
        spawn_on(config, data, templates).await
    }

    /// A key made as `signet keys create` makes it; returns (id, secret).
    pub async fn key(&self, user: &str, env: Environment, scopes: &[&str]) -> (String, String) {
        let created = self
            .registry
            .create_key(
                user,
                env,
                Scopes::parse(scopes).unwrap(),
                None,
                &Actor::cli(),
                None,
            )
            .await
            .expect("key made");
        (created.key.id.clone(), created.secret)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send_json(reqwest::Method::POST, path, key, body).await
    }

    pub async fn patch_json(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send_json(reqwest::Method::PATCH, path, key, body)
            .await
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }
}

/// The status and JSON body of an answer.
pub async fn json_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, body)
}

/// Asserts the contract's error shape and code; returns the error object.
pub async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("every /v1 answer has x-request-id");
    let (got, body) = json_of(response).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    let error = &body["error"];
    assert_eq!(error["request_id"], request_id.as_str());
    assert_eq!(
        error["documentation_url"],
        format!("https://docs.test/api/errors#{code}").as_str()
    );
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    error.clone()
}

/// The throwaway cluster of this test binary run.
struct Cluster {
    socket_dir: PathBuf,
    data_dir: PathBuf,
    _root: TempDir,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
const PG_PORT: u16 = 5432;

/// Runs a PostgreSQL program as the `postgres` user when the tests run as
/// root (initdb refuses root), as the current user otherwise.
fn pg_command(program: &str) -> Command {
    let path = pg_bin().join(program);
    let root = std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(&path);
        command
    } else {
        Command::new(path)
    }
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

extern "C" fn stop_cluster() {
    if let Some(cluster) = CLUSTER.get() {
        pg_ctl_stop(&cluster.data_dir, "immediate");
        // A static is never dropped: its folder goes here, or every run
        // would leave a cluster's files behind.
        let _ = std::fs::remove_dir_all(cluster._root.path());
    }
}

/// `pg_ctl stop -m <mode>` of the cluster in `data_dir`, waiting until it
/// is down; a cluster already down is no failure.
pub fn pg_ctl_stop(data_dir: &Path, mode: &str) {
    let mut stop = pg_command("pg_ctl");
    stop.arg("stop")
        .arg("-D")
        .arg(data_dir)
        .args(["-w", "-m", mode]);
    let _ = stop.output();
}

/// A new cluster under `root`: its data folder and the folder of its
/// socket (it listens on no TCP port).
pub fn init_cluster(root: &Path) -> (PathBuf, PathBuf) {
    assert!(
        pg_bin().join("initdb").exists(),
        "PostgreSQL is missing: install Debian's postgresql (scripts/test does)"
    );
    let data_dir = root.join("pgdata");
    let socket_dir = root.join("socket");
    std::fs::create_dir_all(&socket_dir).unwrap();
    // The server runs as `postgres` when the tests run as root.
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(root)
        .output();
    let mut initdb = pg_command("initdb");
    initdb.arg("-D").arg(&data_dir).args([
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    ]);
    run(initdb, "initdb");
    (data_dir, socket_dir)
}

/// Starts the cluster in `data_dir` on its socket (named by `port`) and,
/// with `tcp`, on `127.0.0.1:<port>` too; returns once it accepts
/// connections (`pg_ctl -w`). Its log goes to `log`.
pub fn start_cluster(data_dir: &Path, socket_dir: &Path, log: &Path, port: u16, tcp: bool) {
    let listen = if tcp { "127.0.0.1" } else { "" };
    let mut start = pg_command("pg_ctl");
    start
        .arg("start")
        .arg("-D")
        .arg(data_dir)
        .arg("-w")
        .arg("-l")
        .arg(log)
        .arg("-o")
        .arg(format!(
            "-c listen_addresses='{listen}' -k {} -p {port} -c max_connections=300 -c fsync=off",
            socket_dir.display()
        ));
    run(start, "pg_ctl start");
}

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let (data_dir, socket_dir) = init_cluster(root.path());
        let log = root.path().join("server.log");
        start_cluster(&data_dir, &socket_dir, &log, PG_PORT, false);
        // SAFETY: registers a plain function to run at process exit.
        unsafe {
            libc::atexit(stop_cluster);
        }
        Cluster {
            socket_dir,
            data_dir,
            _root: root,
        }
    })
}

/// A new empty database in the cluster, as a `postgres://` URL.
pub fn new_postgres_database() -> String {
    let socket_dir = &cluster().socket_dir;
    let name = create_database(socket_dir, PG_PORT);
    format!(
        "postgres://postgres@localhost/{name}?host={}&port={PG_PORT}",
        socket_dir.display()
    )
}

/// A new empty database in the cluster whose socket is in `socket_dir`
/// and named by `port`; returns its name.
pub fn create_database(socket_dir: &Path, port: u16) -> String {
    let name = format!(
        "t_{}",
        signet::registry::ids::new_id("")
            .unwrap()
            .to_ascii_lowercase()
    );
    let mut create = Command::new(pg_bin().join("createdb"));
    create
        .arg("-h")
        .arg(socket_dir)
        .args(["-p", &port.to_string(), "-U", "postgres", &name]);
    run(create, "createdb");
    name
}
