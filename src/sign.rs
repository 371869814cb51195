//! `signet sign`: signed URLs without writing code, one at a time or a
//! CSV file of recipients at once.
//!
//! It applies the server's own text rules before signing, so a name the
//! server would refuse is reported here instead of in a posted link, and
//! warns about characters no configured font can draw. `--explain URL`
//! shows why a URL's signature does or does not verify.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;
use crate::explain;
use crate::modifications::{Limits, Modification};
use crate::options::RenderOptions;
use crate::render::{code_points, Renderer};
use crate::request::{self, BaseId, UserId, OPTION_NAMES};
use crate::signer::UrlSigner;

/// Arguments of `signet sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// TOML configuration holding the user's secrets (demo user when absent).
    #[arg(long, env = "SIGNET_CONFIG")]
    config: Option<PathBuf>,
    /// The user id.
    #[arg(long, required_unless_present = "explain")]
    user: Option<String>,
    /// The template id.
    #[arg(long, required_unless_present = "explain")]
    template: Option<String>,
    /// A rendering option, as NAME=VALUE (scale, width, quality, exp, v);
    /// signed with the rest; repeatable.
    #[arg(long = "option", value_name = "NAME=VALUE")]
    options: Vec<String>,
    /// Explain a URL instead of signing: the payload, the decoded
    /// modifications, and why its signature fails.
    #[arg(long, value_name = "URL", conflicts_with_all = ["set", "csv", "user", "template"])]
    explain: Option<String>,
    /// A layer's new text, as NAME=TEXT; repeatable.
    #[arg(long = "set", value_name = "NAME=TEXT")]
    set: Vec<String>,
    /// A CSV file whose header names layers; each row becomes a URL.
    #[arg(long, conflicts_with = "set")]
    csv: Option<PathBuf>,
    /// Where the CSV with its `url` column goes (standard output if absent).
    #[arg(long, requires = "csv")]
    output: Option<PathBuf>,
    /// Scheme and host of the URLs (default: the configured listen address).
    #[arg(long)]
    base_url: Option<String>,
    /// Output format extension.
    #[arg(long, default_value = "png")]
    ext: String,
}

/// What every signature needs: the shared rules and URL, and the fonts.
struct Signer {
    urls: UrlSigner,
    /// The fonts the server will use, to warn about names they can't draw.
    renderer: Option<Renderer>,
}

impl Signer {
    fn url(&self, mods: &[Modification]) -> Result<String, String> {
        self.urls.url(mods).map_err(|refusal| refusal.to_string())
    }

    /// A warning when no configured font draws some character of `mods`.
    fn glyph_warning(&self, mods: &[Modification]) -> Option<String> {
        let renderer = self.renderer.as_ref()?;
        let missing = renderer.missing_glyphs(mods.iter().filter_map(|m| m.text.as_deref()));
        (!missing.is_empty()).then(|| {
            format!(
                "no configured font draws {}: the URL will answer `422 Missing glyphs` until a font that does is installed",
                code_points(&missing)
            )
        })
    }
}

/// Runs `signet sign`.
pub fn run(args: SignArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    let users = config.user_secrets(&|name| std::env::var(name).ok())?;
    let limits = Limits {
        max_text_chars: config.max_text_chars,
        max_modifications: config.max_modifications,
    };
    if let Some(url) = &args.explain {
        let explanation = explain::explain(url, &users, limits);
        print!("{}", explanation.report);
        return Ok(if explanation.valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let (Some(user), Some(base)) = (&args.user, &args.template) else {
        bail!("--user and --template are required");
    };
    let user = UserId::parse(user).map_err(|e| anyhow::anyhow!("--user: {e}"))?;
    let base = BaseId::parse(base).map_err(|e| anyhow::anyhow!("--template: {e}"))?;
    let mut options = Vec::new();
    for pair in &args.options {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("--option {pair}: expected NAME=VALUE"))?;
        let Some(name) = OPTION_NAMES.iter().find(|n| **n == name) else {
            bail!(
                "--option {pair}: unknown option (known: {})",
                OPTION_NAMES.join(", ")
            );
        };
        options.push((*name, value.to_owned()));
    }
    let format = request::parse_path(&format!("/{user}/{base}.{}", args.ext))
        .map_err(|e| anyhow::anyhow!("--ext {}: {e}", args.ext))?
        .format;
    // Checked now with no expiry test, so a URL meant to expire can be
    // signed; the server applies the same bounds.
    let unexpired: Vec<_> = options
        .iter()
        .filter(|(n, _)| *n != "exp")
        .cloned()
        .collect();
    RenderOptions::parse(&unexpired, format, 0).map_err(|e| anyhow::anyhow!("--option: {e}"))?;
    let renderer = Renderer::new(
        &config.fonts_dir,
        &config.extra_fonts,
        config.render_limits(),
    )
    .map_err(|e| eprintln!("warning: {e}; names are signed without a font check"))
    .ok();
    let Some(secrets) = users.get(&user) else {
        bail!("user {user} is not in the configuration");
    };
    let template = config
        .templates_dir
        .join(user.as_str())
        .join(format!("{base}.svg"));
    if !template.is_file() {
        eprintln!("warning: {} does not exist (yet); the URLs will answer `Unknown template` until it does", template.display());
    }
    let signer = Signer {
        urls: UrlSigner {
            user: user.to_string(),
            base: base.to_string(),
            ext: args.ext.clone(),
            options,
            base_url: args
                .base_url
                .unwrap_or_else(|| format!("http://{}", config.listen)),
            // The first secret signs; the others only verify, which is how
            // a rotation is rolled out.
            secret: secrets[0].clone(),
            limits,
            max_url_bytes: config.max_url_bytes,
        },
        renderer,
    };
    match args.csv {
        Some(csv) => sign_csv(&signer, &csv, args.output.as_deref()),
        None => {
            let mut mods = Vec::new();
            for pair in &args.set {
                let (name, text) = pair
                    .split_once('=')
                    .with_context(|| format!("--set {pair}: expected NAME=TEXT"))?;
                mods.push(Modification::text(name, text));
            }
            let url = signer.url(&mods).map_err(anyhow::Error::msg)?;
            if let Some(warning) = signer.glyph_warning(&mods) {
                eprintln!("warning: {warning}");
            }
            println!("{url}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn sign_csv(signer: &Signer, input: &Path, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut text = String::new();
    std::fs::File::open(input)
        .and_then(|mut f| f.read_to_string(&mut text))
        .with_context(|| format!("reading {}", input.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader.headers().context("reading the CSV header")?.clone();
    let url_column = headers.iter().position(|h| h == "url");
    let records: Vec<_> = reader.records().collect();

    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(records.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows signed")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let sink: Box<dyn Write> = match output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = csv::Writer::from_writer(sink);
    let mut out_headers: Vec<&str> = headers.iter().collect();
    if url_column.is_none() {
        out_headers.push("url");
    }
    writer.write_record(&out_headers)?;

    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let line = index + 2;
        let (mut fields, result) = match record {
            Ok(record) if record.len() == headers.len() => {
                let mods = headers
                    .iter()
                    .zip(record.iter())
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != url_column)
                    .map(|(_, (name, text))| Modification::text(name, text))
                    .collect::<Vec<_>>();
                if let Some(warning) = signer.glyph_warning(&mods) {
                    warnings.push(format!("line {line}: {warning}"));
                }
                (
                    record.iter().map(String::from).collect::<Vec<_>>(),
                    signer.url(&mods),
                )
            }
            Ok(record) => (
                record.iter().map(String::from).collect(),
                Err(format!(
                    "{} fields where the header has {}",
                    record.len(),
                    headers.len()
                )),
            ),
            Err(e) => (Vec::new(), Err(e.to_string())),
        };
        fields.resize(headers.len(), String::new());
        let url = result.unwrap_or_else(|why| {
            failures.push(format!("line {line}: {why}"));
            String::new()
        });
        match url_column {
            Some(i) => fields[i] = url,
            None => fields.push(url),
        }
        writer.write_record(&fields)?;
        bar.inc(1);
    }
    writer.flush()?;
    bar.finish_and_clear();
    let total = records.len();
    eprintln!("signed {} of {total} rows", total - failures.len());
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{} rows could not be signed (their url is empty):",
        failures.len()
    );
    for failure in &failures {
        eprintln!("  {failure}");
    }
    Ok(ExitCode::FAILURE)
}
