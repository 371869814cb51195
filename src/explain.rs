//! `signet sign --explain URL`: the answer to "why is my signature
//! invalid", for someone holding the secrets.
//!
//! It parses the URL exactly as the server does, prints the payload the
//! server verifies, and when no secret matches, tries the mistakes client
//! code makes in practice (a `+` turned into a space, padding added or
//! stripped, options left out of the payload, the other base64 alphabet) to
//! name the one that was made.

use std::collections::HashMap;
use std::fmt::Write;

use crate::modifications::{self, Limits};
use crate::options::{unix_now, RenderOptions};
use crate::request::{self, UserId};
use crate::signing;

/// The report, and whether the URL verifies.
pub struct Explanation {
    pub report: String,
    pub valid: bool,
}

/// Explains `url` against the configured users' secrets.
pub fn explain(url: &str, users: &HashMap<UserId, Vec<String>>, limits: Limits) -> Explanation {
    let mut out = String::new();
    let valid = run(url, users, limits, &mut out).unwrap_or(false);
    Explanation { report: out, valid }
}

fn run(
    url: &str,
    users: &HashMap<UserId, Vec<String>>,
    limits: Limits,
    out: &mut String,
) -> Result<bool, std::fmt::Error> {
    // Scheme and host do not take part in the signature.
    let target = match url.find("://") {
        Some(i) => url[i + 3..].find('/').map_or("/", |j| &url[i + 3 + j..]),
        None => url,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let path = match request::parse_path(path) {
        Ok(path) => path,
        Err(e) => {
            writeln!(
                out,
                "path      {path}\nverdict   the server answers `{e}` before any signature check"
            )?;
            return Ok(false);
        }
    };
    writeln!(out, "user      {}", path.user)?;
    writeln!(out, "template  {}", path.base)?;
    writeln!(out, "format    {}", path.format.extension())?;
    let query = match request::parse_query(query) {
        Ok(query) => query,
        Err(e) => {
            writeln!(out, "verdict   the server answers `{e}`")?;
            return Ok(false);
        }
    };
    let Some(secrets) = users.get(&path.user) else {
        writeln!(
            out,
            "verdict   user {} is not in this configuration (the server answers `Unknown user`)",
            path.user
        )?;
        return Ok(false);
    };
    let options: Vec<String> = query
        .options
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    writeln!(
        out,
        "options   {}",
        if options.is_empty() {
            "(none)".into()
        } else {
            options.join("&")
        }
    )?;
    writeln!(out, "mods      {}", query.modifications)?;
    match modifications::decode(&query.modifications, limits) {
        Ok(mods) => writeln!(
            out,
            "decoded   {}",
            serde_json::to_string(&mods).unwrap_or_default()
        )?,
        Err(e) => writeln!(out, "decoded   — {e}")?,
    }
    let user = path.user.as_str();
    let base = path.base.as_str();
    let payloads = signing::payloads(user, base, &query.modifications, &query.options);
    let payload = payloads[0].clone();
    writeln!(out, "payload   {}", payload.escape_debug())?;
    writeln!(out, "given     {}", query.signature)?;
    for (i, secret) in secrets.iter().enumerate() {
        writeln!(
            out,
            "expected  {} (secret {} of {})",
            signing::sign(secret, &payload),
            i + 1,
            secrets.len()
        )?;
    }
    let unsigned = signing::check_modifications(&query.modifications).err();
    if unsigned == Some(signing::Unsigned::Forged) {
        writeln!(
            out,
            "verdict   invalid: `modifications` holds an `=` before its end, as when options are \
             moved into it; the server answers `Invalid signature`"
        )?;
        return Ok(false);
    }
    let matched = payloads
        .iter()
        .position(|p| signing::verify(secrets, p, &query.signature));
    if let Some(which) = matched {
        let mut verdict = match RenderOptions::parse(&query.options, path.format, unix_now()) {
            Ok(_) => "the signature is valid".to_string(),
            Err(e) => format!("the signature is valid, but the server answers `{e}`"),
        };
        if which == 1 {
            verdict.push_str(
                " (over the first payload with options, still accepted; signers now sign the one above)",
            );
        }
        writeln!(out, "verdict   {verdict}")?;
        return Ok(true);
    }
    let hex = query.signature.len() == 64 && query.signature.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex {
        writeln!(
            out,
            "verdict   `s` is not 64 hex digits ({} characters): it is not a hex HMAC-SHA256",
            query.signature.len()
        )?;
        return Ok(false);
    }
    let mods = &query.modifications;
    let first =
        |m: &str, options: &[(&str, String)]| signing::payloads(user, base, m, options).remove(0);
    let no_options = signing::payload(user, base, mods);
    let mut tries: Vec<(String, String)> = vec![
        (
            "the signature covers the URL without its options; sign the payload above, options included".into(),
            no_options,
        ),
        (
            "a `+` of the base64 arrived as a space: the URL was form-encoded after signing".into(),
            first(&mods.replace(' ', "+"), &query.options),
        ),
        (
            "the signer kept the `=` padding that the URL lacks".into(),
            first(&format!("{mods}{}", "=".repeat((4 - mods.len() % 4) % 4)), &query.options),
        ),
        (
            "the signer stripped `=` padding that the URL still has".into(),
            first(mods.trim_end_matches('='), &query.options),
        ),
        (
            "the signer used the other base64 alphabet (+/ against -_)".into(),
            first(&swap_alphabet(mods), &query.options),
        ),
    ];
    tries.retain(|(_, p)| !payloads.contains(p));
    for (why, candidate) in tries {
        if signing::verify(secrets, &candidate, &query.signature) {
            writeln!(
                out,
                "verdict   invalid: {why}\n          (it matches the payload {})",
                candidate.escape_debug()
            )?;
            return Ok(false);
        }
    }
    if unsigned == Some(signing::Unsigned::NotBase64) {
        writeln!(
            out,
            "verdict   invalid: `modifications` holds a character no base64 alphabet has"
        )?;
        return Ok(false);
    }
    writeln!(
        out,
        "verdict   invalid: no secret signs this payload to the given signature. Either another \
         secret signed it, or the signer's payload differs from the one above: print it on the \
         signing side and compare byte for byte."
    )?;
    Ok(false)
}

fn swap_alphabet(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "be6a052e-bce8-4c14-8bbb-ea6b6f9941d5";
    const LIMITS: Limits = Limits {
        max_text_chars: 100,
        max_modifications: 8,
    };

    fn users() -> HashMap<UserId, Vec<String>> {
        HashMap::from([(
            UserId::parse(USER).unwrap(),
            vec!["old".into(), "secretzzzz".into()],
        )])
    }

    fn url(json: &str, options: &[(&str, String)]) -> String {
        signing::signed_url_with_options(
            "https://img.example.org",
            USER,
            "cert",
            "png",
            json,
            options,
            "secretzzzz",
        )
    }

    #[test]
    fn a_valid_url_says_so_and_shows_its_payload() {
        let e = explain(
            &url(r#"[{"name":"t","text":"Ada"}]"#, &[]),
            &users(),
            LIMITS,
        );
        assert!(e.valid, "{}", e.report);
        assert!(
            e.report.contains(&format!("payload   {USER}+cert+")),
            "{}",
            e.report
        );
        assert!(
            e.report
                .contains(r#"decoded   [{"name":"t","text":"Ada"}]"#),
            "{}",
            e.report
        );
    }

    #[test]
    fn the_usual_mistakes_are_named() {
        // '?>' gives a '+' and a '/' in the base64.
        let good = url(r#"[{"name":"t","text":"a?>~~~"}]"#, &[]);
        assert!(good.contains('+'));
        let spaced = good.replace('+', "%20");
        let e = explain(&spaced, &users(), LIMITS);
        assert!(
            !e.valid && e.report.contains("arrived as a space"),
            "{}",
            e.report
        );

        let signed_without = url(r#"[{"name":"t","text":"Ada"}]"#, &[]);
        let with_option = signed_without.replace("&s=", "&width=500&s=");
        let e = explain(&with_option, &users(), LIMITS);
        assert!(e.report.contains("without its options"), "{}", e.report);

        let e = explain(&signed_without.replace("&s=", "&s=00"), &users(), LIMITS);
        assert!(e.report.contains("not 64 hex digits"), "{}", e.report);

        let tampered = url(r#"[{"name":"t","text":"Ada"}]"#, &[]).replace("cert", "other");
        let e = explain(&tampered, &users(), LIMITS);
        assert!(
            e.report.contains("no secret signs this payload"),
            "{}",
            e.report
        );
    }

    #[test]
    fn an_expired_but_genuine_url_is_called_both() {
        let e = explain(&url("[]", &[("exp", "1000".into())]), &users(), LIMITS);
        assert!(e.valid);
        assert!(
            e.report.contains("valid, but the server answers `Expired`"),
            "{}",
            e.report
        );
    }
}
