//! CSV bodies of batches (and of `signet issue --csv`): UTF-8 with or
//! without a byte-order mark, quoting per RFC 4180, a header row naming
//! the columns.
//!
//! The reader is strict where a lenient one loses data: a quote that
//! opens a value and never closes would swallow every row after it into
//! one value, so the whole file is refused, naming the row and line where
//! it opened; a quote inside an unquoted value, or text after a closing
//! quote, makes that row fail alone. A header that cannot be right (no
//! `name` column, a column the template lacks, a required field without
//! a column) refuses the file, since every row would fail alike. A row
//! with the wrong number of values fails alone. Rows whose values are all
//! empty (blank lines, a spreadsheet's trailing `,,,`) are skipped, but
//! keep their number, so a row's number is its place under the header.

use std::collections::BTreeMap;

use super::{Recipient, Row, RowError};
use crate::registry::certificate::{Declaration, MAX_METADATA_KEY_CHARS};
use crate::registry::error::RegistryError;

/// Largest CSV body.
pub const MAX_CSV_BYTES: usize = 10 * 1024 * 1024;
/// The prefix of metadata columns.
const METADATA: &str = "metadata.";

/// One record as read: its values, or why its row fails.
type Record = Result<Vec<String>, String>;

/// The records of `text` with their 1-based line, header first.
struct Records {
    records: Vec<(usize, Record)>,
}

/// Reads `bytes` into records, refusing text that is not UTF-8 and a
/// quote that never closes. Stops once `max_rows` data rows (not counting
/// blank ones) are exceeded: `BatchTooLarge`.
fn read(bytes: &[u8], max_rows: usize) -> Result<Records, RegistryError> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let line = 1 + bytes[..error.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        RegistryError::invalid(
            "body",
            format!("The CSV is not UTF-8 (line {line}): save it as \"CSV UTF-8\""),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let bytes = text.as_bytes();
    let mut records = Vec::new();
    let (mut at, mut line) = (0, 1);
    let mut data_rows = 0;
    while at < bytes.len() {
        let start_line = line;
        let mut values = Vec::new();
        let mut bad: Option<String> = None;
        // One record: values until an unquoted line break or the end.
        loop {
            let column = values.len() + 1;
            let mut value = String::new();
            if bytes.get(at) == Some(&b'"') {
                at += 1;
                let mut closed = false;
                while let Some(&b) = bytes.get(at) {
                    if b == b'"' {
                        if bytes.get(at + 1) == Some(&b'"') {
                            value.push('"');
                            at += 2;
                            continue;
                        }
                        at += 1;
                        closed = true;
                        break;
                    }
                    if b == b'\n' {
                        line += 1;
                    }
                    let len = utf8_len(b);
                    value.push_str(&text[at..at + len]);
                    at += len;
                }
                if !closed {
                    let row = match records.len() {
                        0 => "The header row".to_owned(),
                        n => format!("Row {n}"),
                    };
                    return Err(RegistryError::invalid(
                        "body",
                        format!(
                            "{row} (line {start_line}): the quote that opens column {column} \
                             never closes"
                        ),
                    ));
                }
                // Only a separator, a line break or the end may follow a
                // closing quote.
                let run = unquoted_run(bytes, at);
                let rest = if ends_line(bytes, at + run) && text[at..at + run] == *"\r" {
                    at += 1;
                    0
                } else {
                    run
                };
                if rest > 0 {
                    bad.get_or_insert(format!(
                        "column {column} has text after its closing quote; quote the whole value"
                    ));
                    value.push_str(&text[at..at + rest]);
                    at += rest;
                }
            } else {
                let len = unquoted_run(bytes, at);
                let raw = &text[at..at + len];
                if raw.contains('"') {
                    bad.get_or_insert(format!(
                        "column {column} holds a quote but is not quoted: enclose the value in \
                         quotes and double the quotes inside it"
                    ));
                }
                let raw = match raw.strip_suffix('\r') {
                    Some(stripped) if ends_line(bytes, at + len) => stripped,
                    _ => raw,
                };
                value.push_str(raw);
                at += len;
            }
            values.push(value);
            match bytes.get(at) {
                Some(b',') => at += 1,
                Some(b'\n') => {
                    at += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        let blank = values.iter().all(String::is_empty);
        if !records.is_empty() && !blank {
            data_rows += 1;
            if data_rows > max_rows {
                return Err(RegistryError::BatchTooLarge { limit: max_rows });
            }
        }
        records.push((start_line, bad.map_or(Ok(values), Err)));
    }
    Ok(Records { records })
}

/// Bytes from `at` up to a separator, a line break or the end (a `\r`
/// before `\n` included).
fn unquoted_run(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&b| b == b',' || b == b'\n')
        .unwrap_or(bytes.len() - at)
}

/// Whether `at` is a line break or the end.
fn ends_line(bytes: &[u8], at: usize) -> bool {
    matches!(bytes.get(at), None | Some(b'\n'))
}

/// Length of the UTF-8 sequence `first` starts (the text is valid).
fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// What a column of an issuing CSV holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Name,
    Email,
    Field(String),
    Metadata(String),
}

/// The recipients of an issuing CSV for a template of `declaration`
/// (named `template_id` in errors), at most `max_rows`.
pub fn recipients(
    bytes: &[u8],
    template_id: &str,
    declaration: &Declaration,
    max_rows: usize,
) -> Result<Vec<Row<Recipient>>, RegistryError> {
    let records = read(bytes, max_rows)?;
    let mut rows = records.records.into_iter();
    let columns = header(rows.next(), template_id, declaration)?;
    let mut recipients = Vec::new();
    for (number, (line, record)) in (1..).zip(rows) {
        let value = match record {
            Ok(values) if values.iter().all(String::is_empty) => continue,
            Ok(values) if values.len() != columns.len() => Err(row_error(
                number,
                line,
                &format!(
                    "it has {} values, and the header names {} columns",
                    values.len(),
                    columns.len()
                ),
            )),
            Ok(values) => Ok(recipient(&columns, values)),
            Err(why) => Err(row_error(number, line, &why)),
        };
        recipients.push(Row { number, value });
    }
    if recipients.is_empty() {
        return Err(no_rows());
    }
    Ok(recipients)
}

/// The certificate ids of a revoking CSV, whose only column is
/// `certificate_id`, at most `max_rows`.
pub fn certificate_ids(bytes: &[u8], max_rows: usize) -> Result<Vec<Row<String>>, RegistryError> {
    let records = read(bytes, max_rows)?;
    let mut rows = records.records.into_iter();
    match rows.next() {
        Some((_, Ok(names))) if names.len() == 1 && names[0].trim() == "certificate_id" => {}
        _ => {
            return Err(RegistryError::invalid(
                "body",
                "The header row must name one column, certificate_id",
            ))
        }
    }
    let mut ids = Vec::new();
    for (number, (line, record)) in (1..).zip(rows) {
        let value = match record {
            Ok(values) if values.iter().all(|v| v.trim().is_empty()) => continue,
            Ok(mut values) if values.len() == 1 => Ok(values.remove(0).trim().to_owned()),
            Ok(values) => Err(row_error(
                number,
                line,
                &format!(
                    "it has {} values, and the header names 1 column",
                    values.len()
                ),
            )),
            Err(why) => Err(row_error(number, line, &why)),
        };
        ids.push(Row { number, value });
    }
    if ids.is_empty() {
        return Err(no_rows());
    }
    Ok(ids)
}

fn no_rows() -> RegistryError {
    RegistryError::invalid("body", "The CSV holds no rows under its header")
}

fn row_error(number: i64, line: usize, why: &str) -> RowError {
    RowError::new(
        "invalid_request",
        None,
        format!("Row {number} (line {line}) cannot be read: {why}"),
    )
}

/// The columns the header names, each checked against the template.
fn header(
    record: Option<(usize, Record)>,
    template_id: &str,
    declaration: &Declaration,
) -> Result<Vec<Column>, RegistryError> {
    let names = match record {
        Some((_, Ok(names))) => names,
        Some((_, Err(why))) => {
            return Err(RegistryError::invalid(
                "body",
                format!("The header row cannot be read: {why}"),
            ))
        }
        None => {
            return Err(RegistryError::invalid(
                "body",
                "The CSV is empty: its first row must name the columns",
            ))
        }
    };
    // A file without a header (its first row is a recipient) is told so,
    // rather than that a name is not a column.
    if !names.iter().any(|name| name.trim() == "name") {
        return Err(RegistryError::invalid(
            "body",
            format!(
                "The header row names no `name` column; the first row must name the columns \
                 (name, email, the template's fields, metadata.<key>), and it holds: {}",
                crate::http::escape(&names.join(", "))
            ),
        ));
    }
    let fields: Vec<&str> = declaration.fields.iter().map(|f| f.name.as_str()).collect();
    let mut columns: Vec<Column> = Vec::with_capacity(names.len());
    for (index, raw) in names.iter().enumerate() {
        let name = raw.trim();
        let column = match name {
            "" => {
                return Err(RegistryError::invalid(
                    "body",
                    format!("Column {} of the header row has no name", index + 1),
                ))
            }
            "name" => Column::Name,
            "email" => Column::Email,
            _ => match name.strip_prefix(METADATA) {
                Some(key) if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS => {
                    return Err(RegistryError::invalid(
                        "body",
                        format!(
                            "Column `{}`: a metadata key is 1 to {MAX_METADATA_KEY_CHARS} \
                             characters after `{METADATA}`",
                            crate::http::escape(name)
                        ),
                    ))
                }
                Some(key) => Column::Metadata(key.to_owned()),
                None if fields.contains(&name) => Column::Field(name.to_owned()),
                None => {
                    return Err(RegistryError::invalid_field(
                        name,
                        format!(
                            "Column `{}` is not name, email, a field of template {} ({}) or \
                             metadata.<key>",
                            crate::http::escape(name),
                            crate::http::escape(template_id),
                            if fields.is_empty() {
                                "it has none".to_owned()
                            } else {
                                fields.join(", ")
                            }
                        ),
                    ))
                }
            },
        };
        if columns.contains(&column) {
            return Err(RegistryError::invalid(
                "body",
                format!(
                    "Column `{}` is named twice in the header row",
                    crate::http::escape(name)
                ),
            ));
        }
        columns.push(column);
    }
    for field in declaration.fields.iter().filter(|f| f.required) {
        if !columns.contains(&Column::Field(field.name.clone())) {
            return Err(RegistryError::invalid_field(
                &field.name,
                format!(
                    "Template {} requires the field `{}`: add a column for it",
                    crate::http::escape(template_id),
                    field.name
                ),
            ));
        }
    }
    Ok(columns)
}

/// A row's recipient; an empty value is a value not given.
fn recipient(columns: &[Column], values: Vec<String>) -> Recipient {
    let mut recipient = Recipient {
        fields: BTreeMap::new(),
        metadata: BTreeMap::new(),
        ..Recipient::default()
    };
    for (column, value) in columns.iter().zip(values) {
        match column {
            Column::Name => recipient.name = value,
            _ if value.is_empty() => {}
            Column::Email => recipient.email = Some(value),
            Column::Field(name) => {
                recipient.fields.insert(name.clone(), value);
            }
            Column::Metadata(key) => {
                recipient.metadata.insert(key.clone(), value);
            }
        }
    }
    recipient
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::certificate::FieldDeclaration;

    fn declaration() -> Declaration {
        Declaration {
            name_layer: "name".into(),
            fields: vec![
                FieldDeclaration {
                    name: "course_name".into(),
                    layers: vec!["course_name".into()],
                    required: true,
                },
                FieldDeclaration {
                    name: "date".into(),
                    layers: vec!["date".into()],
                    required: false,
                },
            ],
            open: false,
        }
    }

    fn parse(text: &str) -> Result<Vec<Row<Recipient>>, RegistryError> {
        recipients(text.as_bytes(), "T", &declaration(), 1000)
    }

    #[test]
    fn quoted_values_hold_separators_quotes_and_line_breaks() {
        let rows = parse(
            "\u{feff}name,email,course_name,metadata.crm\r\n\
             \"Svensson, Anna\",anna@example.org,\"The \"\"Big\"\" Course\",c1\r\n\
             \"Two\nLines\",,Course,\n",
        )
        .unwrap();
        let first = rows[0].value.as_ref().unwrap();
        assert_eq!(first.name, "Svensson, Anna");
        assert_eq!(first.email.as_deref(), Some("anna@example.org"));
        assert_eq!(first.fields["course_name"], "The \"Big\" Course");
        assert_eq!(first.metadata["crm"], "c1");
        let second = rows[1].value.as_ref().unwrap();
        assert_eq!(
            (second.name.as_str(), second.email.as_ref()),
            ("Two\nLines", None)
        );
        assert!(second.metadata.is_empty());
    }

    #[test]
    fn a_quote_that_never_closes_refuses_the_file_naming_its_row() {
        let error = parse("name,course_name\nAnna,A\n\"Bo,B\nCy,C\n").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("Row 2 (line 3)") && text.contains("never closes"),
            "{text}"
        );
    }

    #[test]
    fn a_stray_quote_or_a_wrong_count_fails_its_row_alone() {
        let rows = parse("name,course_name\nAn\"na,A\n\"Bo\"x,B\nCy,C,extra\nDee,D\n").unwrap();
        assert_eq!(rows.len(), 4);
        for row in &rows[..3] {
            let error = row.value.as_ref().unwrap_err();
            assert!(
                error.message.contains(&format!("Row {}", row.number)),
                "{error:?}"
            );
        }
        assert_eq!(rows[3].value.as_ref().unwrap().name, "Dee");
    }

    #[test]
    fn blank_rows_are_skipped_but_keep_their_number() {
        let rows = parse("name,course_name\n\nAnna,A\n,\nBo,B").unwrap();
        let numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [2, 4]);
    }

    #[test]
    fn a_header_that_cannot_be_right_refuses_the_file() {
        let unknown = parse("name,course_name,colour\nA,B,C\n").unwrap_err();
        assert!(
            matches!(&unknown, RegistryError::InvalidField { param, .. } if param == "colour"),
            "{unknown:?}"
        );
        let missing = parse("name,date\nA,B\n").unwrap_err();
        assert!(
            matches!(&missing, RegistryError::InvalidField { param, .. } if param == "course_name"),
            "{missing:?}"
        );
        let headless = parse("Anna Svensson,Course\n").unwrap_err();
        assert!(
            headless.to_string().contains("no `name` column"),
            "{headless}"
        );
        assert!(parse("name,name,course_name\n").is_err());
        assert!(parse("name,course_name\n")
            .unwrap_err()
            .to_string()
            .contains("no rows"));
        assert!(parse("").is_err());
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_with_its_line() {
        let error = recipients(
            b"name,course_name\nA,B\nJ\xf6rg,C\n",
            "T",
            &declaration(),
            9,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn more_rows_than_allowed_is_too_large() {
        let text = format!("name,course_name\n{}", "A,B\n".repeat(11));
        let error = recipients(text.as_bytes(), "T", &declaration(), 10).unwrap_err();
        assert!(matches!(error, RegistryError::BatchTooLarge { limit: 10 }));
    }

    #[test]
    fn revocation_files_have_one_column_of_ids() {
        let ids = certificate_ids(b"certificate_id\r\ncert_a\r\n\r\n cert_b \r\n", 10).unwrap();
        let got: Vec<_> = ids.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(got, ["cert_a", "cert_b"]);
        assert!(certificate_ids(b"id\ncert_a\n", 10).is_err());
    }
}
