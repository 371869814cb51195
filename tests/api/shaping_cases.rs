//! The names the shaping oracle checks, one or more per script, each with
//! its runs spelt out by hand: the face that should draw each stretch of
//! characters, and its direction.
//!
//! A family naming a script's font tests the shaper on that font; `serif`
//! (the default, Noto Serif, which has Latin, Greek and Cyrillic only)
//! tests the fallback too: the stretches Noto Serif cannot draw go to the
//! first font of the fallback order that can, and a space between two such
//! stretches stays in Noto Serif.

/// A font file: a name in `fonts/`, or an absolute path to an installed
/// one; `index` is the face in a collection.
#[derive(Debug, Clone, Copy)]
pub struct Font {
    pub file: &'static str,
    pub index: u32,
}

const fn shipped(file: &'static str) -> Font {
    Font { file, index: 0 }
}

const fn debian(file: &'static str) -> Font {
    Font { file, index: 0 }
}

const SERIF: Font = shipped("NotoSerif-Regular.ttf");
const DEVANAGARI: Font = shipped("NotoSansDevanagari-Regular.ttf");
const ARABIC: Font = shipped("NotoSansArabic-Regular.ttf");
const HEBREW: Font = shipped("NotoSansHebrew-Regular.ttf");
const THAI: Font = shipped("NotoSansThai-Regular.ttf");
const BENGALI: Font = debian("/usr/share/fonts/truetype/noto/NotoSansBengali-Regular.ttf");
const TAMIL: Font = debian("/usr/share/fonts/truetype/noto/NotoSansTamil-Regular.ttf");
const TELUGU: Font = debian("/usr/share/fonts/truetype/noto/NotoSansTelugu-Regular.ttf");
const GUJARATI: Font = debian("/usr/share/fonts/truetype/noto/NotoSansGujarati-Regular.ttf");
const GURMUKHI: Font = debian("/usr/share/fonts/truetype/noto/NotoSansGurmukhi-Regular.ttf");
const KANNADA: Font = debian("/usr/share/fonts/truetype/noto/NotoSansKannada-Regular.ttf");
const MALAYALAM: Font = debian("/usr/share/fonts/truetype/noto/NotoSansMalayalam-Regular.ttf");
const SINHALA: Font = debian("/usr/share/fonts/truetype/noto/NotoSansSinhala-Regular.ttf");
const LAO: Font = debian("/usr/share/fonts/truetype/noto/NotoSansLao-Regular.ttf");
const KHMER: Font = debian("/usr/share/fonts/truetype/noto/NotoSansKhmer-Regular.ttf");
const MYANMAR: Font = debian("/usr/share/fonts/truetype/noto/NotoSansMyanmar-Regular.ttf");
const ARMENIAN: Font = debian("/usr/share/fonts/truetype/noto/NotoSansArmenian-Regular.ttf");
const GEORGIAN: Font = debian("/usr/share/fonts/truetype/noto/NotoSansGeorgian-Regular.ttf");
const ETHIOPIC: Font = debian("/usr/share/fonts/truetype/noto/NotoSansEthiopic-Regular.ttf");
/// The first face of the collection, Noto Sans CJK JP: the first face of
/// the fallback order with Han and Hangul.
const CJK: Font = debian("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc");
const EMOJI: Font = debian("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf");

/// A run's direction. `N` is a number inside right-to-left text: shaped
/// left to right, but placed as part of the right-to-left stretch around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    L,
    R,
    N,
}

#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub text: &'static str,
    pub font: Font,
    pub dir: Dir,
}

#[derive(Debug)]
pub struct Case {
    pub name: &'static str,
    /// The CSS `font-family` the name is set in.
    pub family: &'static str,
    pub text: &'static str,
    /// In logical order; together they spell `text`.
    pub runs: Vec<Run>,
    /// Whether `hb-view`'s ink is a fair comparison (see `EMOJI_INK`).
    pub ink: bool,
}

const fn run(text: &'static str, font: Font, dir: Dir) -> Run {
    Run { text, font, dir }
}

/// One face, left to right.
fn one(name: &'static str, family: &'static str, text: &'static str, font: Font) -> Case {
    Case {
        name,
        family,
        text,
        runs: vec![run(text, font, Dir::L)],
        ink: true,
    }
}

/// One face, right to left.
fn rtl(name: &'static str, family: &'static str, text: &'static str, font: Font) -> Case {
    Case {
        name,
        family,
        text,
        runs: vec![run(text, font, Dir::R)],
        ink: true,
    }
}

fn runs(name: &'static str, family: &'static str, runs: Vec<Run>) -> Case {
    Case {
        name,
        family,
        text: runs.iter().map(|r| r.text).collect::<String>().leak(),
        runs,
        ink: true,
    }
}

/// Difference: `hb-view` draws nothing for Noto Color Emoji (its glyphs
/// are colour bitmaps, which hb-view's cairo output leaves blank), so the
/// emoji cases compare glyphs and positions with `hb-shape` but no ink.
const EMOJI_INK: bool = false;

fn emoji(name: &'static str, runs: Vec<Run>) -> Case {
    Case {
        ink: EMOJI_INK,
        ..self::runs(name, "serif", runs)
    }
}

pub fn cases() -> Vec<Case> {
    use Dir::*;
    vec![
        // Devanagari: the name, set in the script's font and
        // through fallback; a left matra (ि), right matras (ा ी), reph
        // (र्), conjuncts (क्ष त्र ज्ञ), nukta, vocalic r.
        one(
            "devanagari_issue_direct",
            "Noto Sans Devanagari",
            "अनामिका शर्मा",
            DEVANAGARI,
        ),
        runs(
            "devanagari_issue_fallback",
            "serif",
            vec![
                run("अनामिका", DEVANAGARI, L),
                run(" ", SERIF, L),
                run("शर्मा", DEVANAGARI, L),
            ],
        ),
        one(
            "devanagari_left_matra",
            "Noto Sans Devanagari",
            "नामि किरण दीपिका",
            DEVANAGARI,
        ),
        one(
            "devanagari_conjuncts",
            "Noto Sans Devanagari",
            "क्षत्रिय प्रज्ञा श्रीनिवास",
            DEVANAGARI,
        ),
        one(
            "devanagari_reph",
            "Noto Sans Devanagari",
            "धर्मेंद्र कार्तिक वर्मा",
            DEVANAGARI,
        ),
        one(
            "devanagari_nukta",
            "Noto Sans Devanagari",
            "ज़ैनब हृषीकेश",
            DEVANAGARI,
        ),
        one("bengali", "Noto Sans Bengali", "প্রিয়াঙ্কা চক্রবর্তী", BENGALI),
        one("tamil", "Noto Sans Tamil", "கார்த்திகேயன் பொன்னுசாமி", TAMIL),
        one("telugu", "Noto Sans Telugu", "శ్రీనివాస్ రెడ్డి", TELUGU),
        one("gujarati", "Noto Sans Gujarati", "ધ્રુવ પટેલ", GUJARATI),
        one("gurmukhi", "Noto Sans Gurmukhi", "ਗੁਰਪ੍ਰੀਤ ਸਿੰਘ", GURMUKHI),
        one("kannada", "Noto Sans Kannada", "ಕೃಷ್ಣಮೂರ್ತಿ ಗೌಡ", KANNADA),
        one(
            "malayalam",
            "Noto Sans Malayalam",
            "ശ്രീലക്ഷ്മി നായർ",
            MALAYALAM,
        ),
        // With a zero-width joiner, as ශ්‍රී is written.
        one("sinhala", "Noto Sans Sinhala", "කුමාරසිංහ ශ්\u{200d}රී", SINHALA),
        one("thai", "Noto Sans Thai", "ศักดิ์สิทธิ์ น้ำใจ", THAI),
        one("lao", "Noto Sans Lao", "ສົມພອນ ແກ້ວມະນີ", LAO),
        one("khmer", "Noto Sans Khmer", "សុខ ស្រីមុំ", KHMER),
        one("myanmar", "Noto Sans Myanmar", "အောင်ဆန်းစုကြည်", MYANMAR),
        // Arabic: lam-alef (لا), the Allah ligature, harakat.
        rtl(
            "arabic_lam_alef",
            "Noto Sans Arabic",
            "عبد الله لاعب",
            ARABIC,
        ),
        rtl("arabic_diacritics", "Noto Sans Arabic", "مُحَمَّد عَلِيّ", ARABIC),
        rtl("persian", "Noto Sans Arabic", "فاطمه رضایی", ARABIC),
        // Urdu's own letters (ٹ ڈ ں ے) in the shipped Arabic font.
        rtl("urdu", "Noto Sans Arabic", "عمران خان ٹیپو ڈار", ARABIC),
        rtl("hebrew_niqqud", "Noto Sans Hebrew", "יִצְחָק רַבִּין", HEBREW),
        one("armenian", "Noto Sans Armenian", "Արամ Խաչատրյան", ARMENIAN),
        one("georgian", "Noto Sans Georgian", "შოთა რუსთაველი", GEORGIAN),
        one("ethiopic", "Noto Sans Ethiopic", "ኃይለ ሥላሴ", ETHIOPIC),
        // Combining marks, precomposed and not.
        one("greek_marks", "serif", "Ἀθηνᾶ Ελε\u{301}νη", SERIF),
        one("cyrillic_marks", "serif", "Ива\u{301}н Йо\u{308}жик", SERIF),
        one(
            "vietnamese_stacked",
            "serif",
            "Nguyễn Thị Ánh Tuyết Nguye\u{302}\u{303}n",
            SERIF,
        ),
        one("chinese", "serif", "王小明", CJK),
        runs(
            "japanese",
            "serif",
            vec![run("山田", CJK, L), run(" ", SERIF, L), run("太郎", CJK, L)],
        ),
        one("hangul", "serif", "김민준", CJK),
        emoji(
            "emoji_family",
            vec![run("👨\u{200d}👩\u{200d}👧\u{200d}👦", EMOJI, L)],
        ),
        emoji("emoji_skin_tone", vec![run("👋🏽👩🏾\u{200d}💻", EMOJI, L)]),
        emoji("emoji_flags", vec![run("🇮🇳🇯🇵🇧🇷", EMOJI, L)]),
        emoji(
            "emoji_after_a_name",
            vec![run("Zoë ", SERIF, L), run("🎓🎉", EMOJI, L)],
        ),
        // Mixed names: a Latin given name and a Devanagari or Bengali
        // family name in the template's font; Arabic with Latin digits.
        runs(
            "mixed_latin_devanagari",
            "serif",
            vec![run("Priya ", SERIF, L), run("शर्मा", DEVANAGARI, L)],
        ),
        runs(
            "mixed_latin_bengali",
            "serif",
            vec![run("Priya ", SERIF, L), run("প্রিয়া", BENGALI, L)],
        ),
        runs(
            "arabic_with_digits",
            "Noto Sans Arabic",
            vec![run("ليلى أحمد ", ARABIC, R), run("2026", ARABIC, N)],
        ),
        runs(
            "arabic_digits_between_words",
            "Noto Sans Arabic",
            vec![
                run("محمد ", ARABIC, R),
                run("2024", ARABIC, N),
                run(" علي", ARABIC, R),
            ],
        ),
        runs(
            "arabic_through_fallback",
            "serif",
            vec![
                run("ليلى", ARABIC, R),
                run(" ", SERIF, R),
                run("أحمد", ARABIC, R),
                run(" ", SERIF, R),
                run("2026", SERIF, N),
            ],
        ),
    ]
}
