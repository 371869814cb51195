//! The real `signet` binary as a child process, for the tests that kill
//! it, cut its database away or read its log: a configuration of its own
//! in a folder that outlives the process, so a second start finds the
//! same data; every line the process writes (stderr and stdout) is kept.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tempfile::TempDir;

use crate::helpers::{repo, SECRET, USER};

/// Where the account's certificate links point: links that do not depend
/// on the port a start happened to get, so a certificate read after a
/// restart is the very object answered before it.
pub const PUBLIC_BASE: &str = "https://credentials.example.org";

/// How long a start may take before the test fails with the log.
const START_BOUND: Duration = Duration::from_secs(60);

/// A configuration folder: `signet.toml`, the demo templates, the data.
pub struct ServerSetup {
    pub dir: TempDir,
    pub config: PathBuf,
}

impl ServerSetup {
    /// One account with the demo templates, links under [`PUBLIC_BASE`]
    /// and a rate limit no test reaches, on SQLite under the folder or on
    /// `database_url`.
    pub fn new(database_url: Option<&str>) -> ServerSetup {
        ServerSetup::with_users(
            database_url,
            &format!(
                "[[users]]\nid = \"{USER}\"\nsecrets = [\"{SECRET}\"]\nplan = \"custom\"\n\
                 rate_limit_per_minute = 1000000\nbatch_size = 100\npublic_base_url = \"{PUBLIC_BASE}\"\n"
            ),
        )
    }

    /// The same with the given `[[users]]` tables (the first must be
    /// [`USER`], whose demo templates are copied).
    pub fn with_users(database_url: Option<&str>, users: &str) -> ServerSetup {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("templates").join(USER);
        std::fs::create_dir_all(&templates).unwrap();
        for entry in std::fs::read_dir(repo().join("templates").join(USER)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), templates.join(entry.file_name())).unwrap();
            }
        }
        let database =
            database_url.map_or(String::new(), |url| format!("database_url = {url:?}\n"));
        let config = dir.path().join("signet.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ntemplates_dir = \"templates\"\nfonts_dir = {:?}\n\
                 extra_fonts = []\ndata_dir = \"data\"\napi_docs_url = \"https://docs.test/api\"\n\
                 {database}{users}",
                repo().join("fonts").display().to_string()
            ),
        )
        .unwrap();
        ServerSetup { dir, config }
    }

    /// The SQLite file, when the setup has no `database_url`.
    pub fn sqlite_file(&self) -> PathBuf {
        self.dir.path().join("data").join("registry.sqlite3")
    }

    /// `signet <args> --config <file>` with only `env` in its
    /// environment, run to its end.
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .expect("the signet binary runs");
        assert!(
            output.status.success(),
            "signet {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// A live key of [`USER`] made by `signet keys create`: its secret.
    pub fn create_key(&self, scopes: &[&str]) -> String {
        let mut args = vec!["keys", "create", "--user", USER, "--env", "live"];
        for scope in scopes {
            args.extend(["--scope", scope]);
        }
        let output = self.cli(&args, &[]);
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Starts `signet serve` with `SIGNET_LOG=<log>` and `env`, and
    /// nothing else, in its environment; returns once it listens.
    pub fn start(&self, log: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env_clear()
            .env("SIGNET_LOG", log)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the signet binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let readers = vec![
            keep_lines(stderr, Arc::clone(&log), Some(tx)),
            keep_lines(stdout, Arc::clone(&log), None),
        ];
        let mut server = Server {
            child,
            address: String::new(),
            log,
            readers,
        };
        match rx.recv_timeout(START_BOUND) {
            Ok(address) => server.address = address,
            Err(_) => panic!(
                "the server did not say where it listens:\n{}",
                server.kill()
            ),
        }
        server
    }
}

/// Reads `pipe` to its end, line by line, into `log`; the first line
/// that says where the server listens sends the address to `listening`.
fn keep_lines(
    pipe: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    mut listening: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(rest) = text.split("address=").nth(1) {
                if let Some(tx) = listening.take() {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
            log.lock().unwrap().push_str(&text);
        }
    })
}

/// A running `signet serve`.
pub struct Server {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    /// The URL of `path` under `/v1`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/v1{path}", self.address)
    }

    /// What the process has written so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `kill -9`: no chance to flush, close or finish anything. Returns
    /// the whole log, read to the end of both pipes.
    pub fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
