//! Starting a server on a loopback port, signing URLs with the customers'
//! client code in `clients/`, and reading responses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use resvg::tiny_skia::Pixmap;
use signet::config::{Config, UserConfig};
use signet::http::{serve, AppState};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const USER: &str = "be6a052e-bce8-4c14-8bbb-ea6b6f9941d5";
pub const SECRET: &str = "secretzzzz";
pub const CERT: &str = "TEafv3AfNptmzii4zj2jkc";
pub const OTHER_USER: &str = "other-user_2";
pub const OTHER_SECRET: &str = "other secret";

/// A chain of blurs over a large canvas: slow enough to still be
/// running while a test sends its next request.
pub const SLOW_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="2000">
<defs><filter id="f" x="0" y="0" width="1" height="1">BLURS</filter></defs>
<rect width="2000" height="2000" fill="#c33" filter="url(#f)"/><text id="t" x="10" y="50">x</text></svg>"##;

pub fn slow_svg() -> String {
    SLOW_SVG.replace(
        "BLURS",
        &r#"<feGaussianBlur stdDeviation="30"/>"#.repeat(20),
    )
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running server with its own template folder.
pub struct TestApp {
    pub addr: SocketAddr,
    pub templates: TempDir,
    pub client: reqwest::Client,
    /// Send to stop the server gracefully.
    pub shutdown: Option<oneshot::Sender<()>>,
    /// The serve loop; ends after a shutdown once connections are done.
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes `templates/<user>/<name>` (`name` may hold a folder).
    pub fn write_template(&self, user: &str, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.templates.path().join(user).join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// A URL signed by the reference client.
    pub fn reference_url(&self, base: &str, pairs: &[(&str, &str)]) -> String {
        reference_url(&self.base_url(), USER, SECRET, base, pairs)
    }

    /// A URL whose modifications text is signed exactly as given.
    pub fn raw_url(&self, user: &str, secret: &str, base: &str, ext: &str, mods: &str) -> String {
        let sig = signet::signing::sign(secret, &signet::signing::payload(user, base, mods));
        format!(
            "{}/{user}/{base}.{ext}?modifications={mods}&s={sig}",
            self.base_url()
        )
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.expect("request failed")
    }

    pub async fn health(&self) -> serde_json::Value {
        let body = self
            .get(&format!("{}/healthz", self.base_url()))
            .await
            .text()
            .await
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Returns once a render holds a slot: a condition, polled, not a
    /// guess at how long a request takes to arrive.
    pub async fn until_rendering(&self) {
        while self.health().await["renders_running"] != 1 {
            tokio::task::yield_now().await;
        }
    }

    pub async fn renders_started(&self) -> u64 {
        self.health().await["renders_started"].as_u64().unwrap()
    }
}

/// A signing client in `clients/`, run as a customer runs it.
#[derive(Clone, Copy, Debug)]
pub enum Client {
    Python,
    Node,
    Php,
    Shell,
}

impl Client {
    /// The interpreter, the script, and the Debian package that has the
    /// interpreter (named when it is missing).
    fn command(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Client::Python => ("python3", "sign_url.py", "python3"),
            Client::Node => ("node", "sign_url.js", "nodejs"),
            Client::Php => ("php", "sign_url.php", "php-cli"),
            Client::Shell => ("sh", "sign_url.sh", "openssl"),
        }
    }

    /// Runs the client; a missing interpreter fails the test and says what
    /// to install rather than skipping it.
    pub fn sign(
        self,
        host: &str,
        user: &str,
        secret: &str,
        base: &str,
        pairs: &[(&str, &str)],
    ) -> String {
        let (program, script, package) = self.command();
        let mut cmd = Command::new(program);
        cmd.arg(repo().join("clients").join(script))
            .args([host, user, secret, base]);
        for (name, text) in pairs {
            cmd.arg(format!("{name}={text}"));
        }
        let out = cmd.output().unwrap_or_else(|e| {
            panic!("{program} cannot run ({e}): install Debian's {package}, or run scripts/test, which does")
        });
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

/// A URL signed by `clients/sign_url.py`, the README's Python: the way
/// customers sign.
pub fn reference_url(
    host: &str,
    user: &str,
    secret: &str,
    base: &str,
    pairs: &[(&str, &str)],
) -> String {
    Client::Python.sign(host, user, secret, base, pairs)
}

/// Fails with what to install when a file the tests need is missing.
pub fn require_file(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian's {package}, or run scripts/test, which does"
    );
}

/// Fails with what to install when one of the configuration's installed
/// fonts is missing: the server would start without it and refuse CJK,
/// emoji and the names of the scripts `fonts/` does not ship.
pub fn require_extra_fonts(config: &Config) {
    for font in &config.extra_fonts {
        let path = font.to_string_lossy();
        let package = if path.contains("Emoji") {
            "fonts-noto-color-emoji"
        } else if path.contains("CJK") {
            "fonts-noto-cjk"
        } else {
            "fonts-noto-core"
        };
        require_file(&path, package);
    }
}

/// Fails with what to install when a program the tests run is missing.
pub fn require_program(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: install Debian's {package}, or run scripts/test, which does"
    );
}

/// Sends a request line as given, for targets no HTTP client library
/// would build; returns the status and the raw header block.
pub async fn raw_get(addr: std::net::SocketAddr, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head)
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts a server on the shipped templates plus a second user, after
/// `adjust` has had its say on the configuration.
pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let templates = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("templates").join(USER),
        &templates.path().join(USER),
    );
    let other = templates.path().join(OTHER_USER);
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        repo().join("templates").join(USER).join("badge.svg"),
        other.join("mine.svg"),
    )
    .unwrap();

    let mut config = Config::for_dirs(templates.path().to_owned(), repo().join("fonts"));
    require_extra_fonts(&config);
    config.users = vec![
        UserConfig {
            id: USER.into(),
            secrets: vec![SECRET.into()],
            ..UserConfig::default()
        },
        UserConfig {
            id: OTHER_USER.into(),
            secrets: vec![OTHER_SECRET.into()],
            ..UserConfig::default()
        },
    ];
    adjust(&mut config);
    let state = AppState::new(config).expect("state builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        templates,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A URL signed by the library's signer, for what the reference client
/// cannot express (rendering options, fields beyond `text`).
pub fn signed_url(
    app: &TestApp,
    base: &str,
    ext: &str,
    mods: &serde_json::Value,
    options: &[(&str, &str)],
) -> String {
    let options: Vec<(&str, String)> = options.iter().map(|(k, v)| (*k, v.to_string())).collect();
    signet::signing::signed_url_with_options(
        &app.base_url(),
        USER,
        base,
        ext,
        &mods.to_string(),
        &options,
        SECRET,
    )
}

/// A server whose demo user also has the reference templates and assets.
pub async fn spawn_reference_app() -> TestApp {
    let app = spawn_app().await;
    copy_dir(
        &repo().join("tests/reference/templates"),
        &app.templates.path().join(USER),
    );
    app
}

pub fn error_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-stencil-error")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub fn decode_png(bytes: &[u8]) -> Pixmap {
    Pixmap::decode_png(bytes).expect("a valid PNG")
}

/// The RGBA of one pixel.
pub fn pixel(png: &Pixmap, x: u32, y: u32) -> [u8; 4] {
    let p = png.pixel(x, y).unwrap().demultiply();
    [p.red(), p.green(), p.blue(), p.alpha()]
}

/// A PNG of one colour.
pub fn solid_png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut pixmap = Pixmap::new(w, h).unwrap();
    pixmap.fill(resvg::tiny_skia::Color::from_rgba8(
        rgb[0], rgb[1], rgb[2], 255,
    ));
    pixmap.encode_png().unwrap()
}
