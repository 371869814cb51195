//! The hostile requests of the fuzz test, from a small seeded generator:
//! correctly signed URLs with hostile modifications and options (a buggy
//! or leaked signer can send anything), and raw bytes no client library
//! would send. Each case is a function of the seed and its number alone.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::helpers::{solid_png, SECRET, USER};

/// SplitMix64: tiny, deterministic, good enough to pick cases. The flag
/// is `tame`: a case that asks the generators for values that mostly pass
/// validation, so that hostile content also reaches the renderers.
pub struct Rng(u64, bool);

impl Rng {
    pub fn new(seed: u64, case: u64) -> Rng {
        let mut rng = Rng(seed ^ case.wrapping_mul(0xA076_1D64_78BD_642F), false);
        rng.next();
        rng.1 = rng.chance(40);
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn tame(&self) -> bool {
        self.1
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// One request to send.
pub struct Case {
    pub bytes: Vec<u8>,
    /// A `.pdf` with a `data:` image: see the exclusion in `fuzz`.
    pub pdf_with_data_uri: bool,
}

/// Characters chosen to break things: controls, bidi, JSON and URL
/// specials, scripts from every font, marks, invisibles.
const NASTY: &[char] = &[
    '\0',
    '\u{1}',
    '\u{7}',
    '\t',
    '\n',
    '\r',
    '\u{b}',
    '\u{1b}',
    '\u{7f}',
    '\u{80}',
    '\u{85}',
    '\u{9f}',
    '\u{202a}',
    '\u{202e}',
    '\u{2066}',
    '\u{2069}',
    '\u{200e}',
    '\u{200f}',
    '\u{61c}',
    '\u{200b}',
    '\u{feff}',
    '\u{301}',
    '"',
    '\\',
    '<',
    '>',
    '&',
    '%',
    '+',
    '/',
    '=',
    '#',
    '`',
    ' ',
    'é',
    'ß',
    'Ж',
    'א',
    'ع',
    '中',
    'ก',
    'क',
    '😀',
    '\u{10ffff}',
    '\u{e000}',
    '\u{fffd}',
];

/// A string of up to `max` characters, mostly letters, often nasty.
pub fn text(rng: &mut Rng, max: usize) -> String {
    let len = if rng.chance(10) && !rng.tame() {
        max
    } else {
        rng.below(max.min(24) + 1)
    };
    (0..len)
        .map(|_| {
            let c = rng.pick(NASTY);
            let refused = c.is_control() || ('\u{2000}'..'\u{2070}').contains(&c);
            if rng.chance(30) && !(refused && rng.tame()) {
                c
            } else {
                (b'a' + rng.below(26) as u8) as char
            }
        })
        .collect()
}

const LAYERS: &[&str] = &[
    "title",
    "caption",
    "panel",
    "badge",
    "logo",
    "qr",
    "box_title",
];

fn name(rng: &mut Rng) -> String {
    if rng.tame() || rng.chance(70) {
        rng.pick(LAYERS).to_string()
    } else {
        text(rng, 80)
    }
}

fn color(rng: &mut Rng) -> String {
    let hex = |rng: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| rng.pick(b"0123456789abcdefABCDEF") as char)
            .collect()
    };
    let choice = if rng.tame() {
        rng.below(3)
    } else {
        rng.below(6)
    };
    match choice {
        0 => format!("#{}", hex(rng, 3)),
        1 => format!("#{}", hex(rng, 6)),
        2 => format!("#{}", hex(rng, 8)),
        3 => format!("#{}\n", hex(rng, 3)),
        4 => rng
            .pick(&[
                "red",
                "",
                "#",
                "#ggg",
                "#12345",
                "rgb(1,2,3)",
                "#fff\u{202e}",
            ])
            .into(),
        _ => text(rng, 12),
    }
}

/// An image reference: an asset name, or a `data:` URI of anything from a
/// valid PNG to junk.
fn src(rng: &mut Rng) -> String {
    if rng.chance(30) {
        return rng
            .pick(&[
                "assets/logo.png",
                "logo.png",
                "missing.png",
                "../x.png",
                ".hidden",
                "a/b",
            ])
            .to_string();
    }
    let mut image = match rng.below(4) {
        0 => solid_png(
            1 + rng.below(40) as u32,
            1 + rng.below(40) as u32,
            [200, 10, 10],
        ),
        1 => b"\x89PNG\r\n\x1a\n".to_vec(),
        2 => b"\xff\xd8\xff\xe0\x00\x10JFIF".to_vec(),
        _ => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
    };
    if !image.is_empty() && rng.chance(50) {
        // Corrupt, truncate or pad the image.
        match rng.below(3) {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(image.len());
                    image[at] ^= 1 << rng.below(8);
                }
            }
            1 => image.truncate(rng.below(image.len())),
            _ => image.extend((0..rng.below(32)).map(|_| rng.next() as u8)),
        }
    }
    let mime = rng.pick(&["image/png", "image/jpeg", "image/svg+xml", "text/plain", ""]);
    let mut data = if rng.chance(50) {
        STANDARD.encode(&image)
    } else {
        URL_SAFE_NO_PAD.encode(&image)
    };
    if rng.chance(15) {
        data.insert(
            rng.below(data.len() + 1),
            rng.pick(&['*', ' ', '=', '\n', 'é']),
        );
    }
    let base64 = if rng.chance(90) { ";base64" } else { "" };
    format!("data:{mime}{base64},{data}")
}

/// One modification object, as JSON text (not always valid).
fn modification(rng: &mut Rng, pdf_data: &mut bool) -> String {
    let mut fields = vec![format!("\"name\":{}", json_string(&name(rng)))];
    for _ in 0..1 + rng.below(3) {
        let kind = if rng.tame() {
            rng.below(5)
        } else {
            rng.below(7)
        };
        let field = match kind {
            0 => format!("\"text\":{}", json_string(&text(rng, 1010))),
            1 => format!("\"color\":{}", json_string(&color(rng))),
            2 => format!(
                "\"visible\":{}",
                rng.pick(&["false", "true", "0", "\"no\"", "null"])
            ),
            3 => {
                let src = src(rng);
                *pdf_data |= src.starts_with("data:");
                format!("\"src\":{}", json_string(&src))
            }
            4 => format!("\"qrcode\":{}", json_string(&text(rng, 2400))),
            5 => format!("{}:1", json_string(&text(rng, 12))),
            _ => format!(
                "\"text\":{}",
                rng.pick(&["1", "[]", "{}", "\"\\ud800\"", "1e999"])
            ),
        };
        fields.push(field);
    }
    format!("{{{}}}", fields.join(","))
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The modifications text as it is signed: base64 of JSON, mostly.
fn modifications(rng: &mut Rng, pdf_data: &mut bool) -> String {
    let count = if rng.chance(5) && !rng.tame() {
        70
    } else {
        rng.below(4)
    };
    let objects: Vec<String> = (0..count).map(|_| modification(rng, pdf_data)).collect();
    let mut json = format!("[{}]", objects.join(","));
    let mangle = if rng.tame() { 99 } else { rng.below(12) };
    match mangle {
        0 => {
            let mut at = rng.below(json.len() + 1);
            while !json.is_char_boundary(at) {
                at -= 1;
            }
            json.truncate(at);
        }
        1 => json = format!("{}{json}{}", "[".repeat(200), "]".repeat(200)),
        2 => json = text(rng, 40),
        _ => {}
    }
    let encoding = if rng.tame() {
        2 + rng.below(8)
    } else {
        rng.below(10)
    };
    match encoding {
        0 => text(rng, 30),
        1 => STANDARD.encode(&json).trim_end_matches('=').to_string() + "=",
        2..=4 => STANDARD.encode(&json),
        _ => URL_SAFE_NO_PAD.encode(&json),
    }
}

/// Percent-encodes all but base64's characters, so `+` stays a `+`.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'+')
    .remove(b'/')
    .remove(b'=')
    .remove(b'-')
    .remove(b'_');

fn option(rng: &mut Rng) -> (&'static str, String) {
    let name = rng.pick(&["scale", "width", "quality", "exp", "v"]);
    if rng.tame() {
        let value = match name {
            "scale" => rng.pick(&["0.5", "1", "2"]),
            "width" => rng.pick(&["100", "300", "601"]),
            "quality" => rng.pick(&["1", "50", "100"]),
            "exp" => "4102444800",
            _ => rng.pick(&["1", "a.b-c_2"]),
        };
        return (name, value.to_string());
    }
    let value = match rng.below(4) {
        0 => rng
            .pick(&["1", "0.5", "2", "300", "80", "4102444800", "abc"])
            .to_string(),
        1 => rng
            .pick(&["NaN", "-1", "1e9", "", "0", "99999999999999", "0x10", "inf"])
            .to_string(),
        _ => text(rng, 20),
    };
    (name, value)
}

/// A signed image request: the signature holds, everything else is
/// hostile.
pub fn signed(rng: &mut Rng) -> Case {
    let mut pdf_data = false;
    let mods = modifications(rng, &mut pdf_data);
    let count = if rng.tame() {
        rng.below(4) / 2
    } else {
        rng.below(3)
    };
    let mut options: Vec<(&str, String)> = (0..count).map(|_| option(rng)).collect();
    options.sort_by_key(|(name, _)| *name);
    options.dedup_by_key(|(name, _)| *name);
    let (ext, base) = if rng.tame() {
        (rng.pick(&["png", "jpg", "webp", "pdf"]), "layers")
    } else {
        let ext = rng.pick(&["png", "png", "jpg", "jpeg", "webp", "pdf", "gif"]);
        (
            ext,
            rng.pick(&["layers", "layers", "layers", "nothing_here"]),
        )
    };
    let payload = signet::signing::payloads(USER, base, &mods, &options).swap_remove(0);
    let signature = signet::signing::sign(SECRET, &payload);
    let mut target = format!(
        "/{USER}/{base}.{ext}?modifications={}",
        utf8_percent_encode(&mods, QUERY)
    );
    for (name, value) in &options {
        target.push_str(&format!("&{name}={}", utf8_percent_encode(value, QUERY)));
    }
    target.push_str(&format!("&s={signature}"));
    let accept = rng.pick(&["*/*", "image/png", "text/html"]);
    let method = if rng.chance(10) { "HEAD" } else { "GET" };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    Case {
        bytes: request.into_bytes(),
        pdf_with_data_uri: ext == "pdf" && pdf_data,
    }
}

fn bytes_of(rng: &mut Rng, max: usize) -> Vec<u8> {
    (0..rng.below(max + 1))
        .map(|_| match rng.below(4) {
            0 => rng.next() as u8,
            1 => rng.pick(b"\r\n\t \x00\x7f\x80\xff:;,<>\"%"),
            _ => b'a' + rng.below(26) as u8,
        })
        .collect()
}

/// One request head with a body, raw: odd methods, targets, versions,
/// fields and framing.
/// No `HEAD` here: its answer has a length but no body, so in a pipeline
/// (which odd line endings can make of one request) the answers after it
/// could not be told apart. Signed cases send `HEAD` alone.
fn raw_request(rng: &mut Rng, head_ok: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.chance(10) {
        out.extend_from_slice(rng.pick(&[&b"\r\n"[..], b"\n\n", b"\r\n\r\n\r\n"]));
    }
    let method: Vec<u8> = if head_ok || rng.chance(60) {
        rng.pick(&[
            "GET", "POST", "get", "PUT", "DELETE", "OPTIONS", "CONNECT", "BREW",
        ])
        .into()
    } else {
        bytes_of(rng, 10)
    };
    out.extend_from_slice(&method);
    out.push(b' ');
    let target: Vec<u8> = match rng.below(8) {
        0 => b"/healthz".to_vec(),
        1 => format!("/{USER}/layers.png?s=00").into_bytes(),
        2 => format!(
            "/{USER}/layers.png?modifications=W10&s=00&{}=1",
            utf8_percent_encode(&text(rng, 20), QUERY)
        )
        .into_bytes(),
        3 => [b"/".as_slice(), &bytes_of(rng, 30)].concat(),
        4 => format!("/{}", "a".repeat(rng.pick(&[16_400, 66_000, 100]))).into_bytes(),
        5 => rng
            .pick(&["*", "http://x/healthz", "x:1", "//a", "http://", "/a#b"])
            .into(),
        _ => format!("/{USER}/{}", text(rng, 20))
            .into_bytes()
            .iter()
            .map(|&b| if b == b' ' { b'_' } else { b })
            .collect(),
    };
    out.extend_from_slice(&target);
    out.push(b' ');
    out.extend_from_slice(if head_ok || rng.chance(80) {
        rng.pick(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]).as_bytes()
    } else {
        rng.pick(&[
            "HTTP/2.0",
            "HTTP/1.2",
            "HTTP/1",
            "http/1.1",
            "HTTP/1.1 x",
            "",
        ])
        .as_bytes()
    });
    let eol: &[u8] = if rng.chance(85) {
        b"\r\n"
    } else {
        rng.pick(&[&b"\n"[..], b"\r"])
    };
    out.extend_from_slice(eol);
    out.extend_from_slice(b"Host: x\r\n");
    let mut body = Vec::new();
    for _ in 0..rng.below(5) {
        let field: Vec<u8> = match rng.below(12) {
            0 => b"Content-Length: 5\r\nContent-Length: 5\r\n".to_vec(),
            1 => format!(
                "Content-Length: {}\r\nContent-Length: {}\r\n",
                rng.below(9),
                rng.below(9)
            )
            .into_bytes(),
            2 => {
                body = b"5\r\nhello\r\n0\r\n\r\n".to_vec();
                rng.pick(&[
                    "Transfer-Encoding: chunked\r\n",
                    "Transfer-Encoding: gzip\r\n",
                    "Transfer-Encoding: chunked, gzip\r\n",
                ])
                .into()
            }
            3 => {
                body = bytes_of(rng, 20);
                format!(
                    "Content-Length: {}\r\n",
                    rng.pick(&["3", "0", "-1", "1 ", "99999999999999999999", "12"])
                )
                .into_bytes()
            }
            4 => b"Expect: 100-continue\r\n".to_vec(),
            5 => rng
                .pick(&[
                    "Connection: close\r\n",
                    "Connection: keep-alive\r\n",
                    "Connection: upgrade\r\nUpgrade: h2c\r\n",
                ])
                .into(),
            6 => "A: b\r\n".repeat(rng.pick(&[99, 101, 150])).into_bytes(),
            7 => format!("Big: {}\r\n", "b".repeat(rng.pick(&[40_000, 70_000]))).into_bytes(),
            8 => b" folded\r\n".to_vec(),
            9 => rng
                .pick(&[
                    "Accept: image/png\r\n",
                    "If-None-Match: *\r\n",
                    "Host: y\r\n",
                ])
                .into(),
            _ if head_ok => b"X-Ok: 1\r\n".to_vec(),
            _ => [
                bytes_of(rng, 12),
                b": ".to_vec(),
                bytes_of(rng, 20),
                b"\r\n".to_vec(),
            ]
            .concat(),
        };
        out.extend_from_slice(&field);
    }
    out.extend_from_slice(eol);
    out.extend_from_slice(&body);
    out
}

/// Raw bytes: one to four requests pipelined, maybe garbage after them.
pub fn raw(rng: &mut Rng) -> Case {
    let mut bytes = Vec::new();
    let count = 1 + rng.below(4);
    for i in 0..count {
        let head_ok = i == 0 && rng.chance(50);
        bytes.extend(raw_request(rng, head_ok));
    }
    if rng.chance(20) {
        bytes.extend(bytes_of(rng, 200));
    }
    Case {
        bytes,
        pdf_with_data_uri: false,
    }
}
