//! Reading task files: JSON (one object or an array), JSONL, CSV, TSV and plain text.
//!
//! Parsing streams: each task is handed to a callback as soon as it is read, so a caller can write
//! tasks in batches while the file is still being read and memory stays bounded by the input.
//! Every error names where it happened (item, line or row) and why.

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::label_config::UNDEFINED_DATA_KEY;
use super::task_item::{TaskItem, TaskItemError};

/// The file formats an import understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Json,
    Jsonl,
    Csv,
    Tsv,
    Txt,
}

impl ImportFormat {
    /// Chooses a format from a file name's extension.
    pub fn from_file_name(name: &str) -> Option<ImportFormat> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "json" => Some(ImportFormat::Json),
            "jsonl" | "ndjson" => Some(ImportFormat::Jsonl),
            "csv" => Some(ImportFormat::Csv),
            "tsv" => Some(ImportFormat::Tsv),
            "txt" => Some(ImportFormat::Txt),
            _ => None,
        }
    }

    /// Chooses a format from a request's content type (`application/json` and unknown types read
    /// as JSON, which also accepts JSONL).
    pub fn from_content_type(content_type: &str) -> ImportFormat {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/jsonl" | "application/x-ndjson" | "application/x-jsonlines" | "application/jsonlines" => {
                ImportFormat::Jsonl
            }
            "text/csv" | "application/csv" => ImportFormat::Csv,
            "text/tab-separated-values" | "text/tsv" => ImportFormat::Tsv,
            "text/plain" => ImportFormat::Txt,
            _ => ImportFormat::Json,
        }
    }
}

/// Where in a file something went wrong and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{location}: {reason}")]
pub struct ImportError {
    pub location: String,
    pub reason: String,
}

impl ImportError {
    fn at(location: impl Into<String>, reason: impl ToString) -> ImportError {
        ImportError {
            location: location.into(),
            reason: reason.to_string(),
        }
    }
}

/// Reads every task of `bytes` in `format`, calling `on_task` for each in file order. Stops at the
/// first error, which is either a parse problem or one returned by `on_task`.
pub fn read_tasks<F>(bytes: &[u8], format: ImportFormat, mut on_task: F) -> Result<usize, ImportError>
where
    F: FnMut(TaskItem) -> Result<(), ImportError>,
{
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match format {
        ImportFormat::Json => read_json(bytes, &mut on_task),
        ImportFormat::Jsonl => read_jsonl(bytes, &mut on_task),
        ImportFormat::Csv => read_delimited(bytes, pick_csv_delimiter(bytes), &mut on_task),
        ImportFormat::Tsv => read_delimited(bytes, b'\t', &mut on_task),
        ImportFormat::Txt => read_text(bytes, &mut on_task),
    }
}

fn item_error(index: usize, error: TaskItemError) -> ImportError {
    ImportError::at(format!("item {index}"), error)
}

fn read_json<F>(bytes: &[u8], on_task: &mut F) -> Result<usize, ImportError>
where
    F: FnMut(TaskItem) -> Result<(), ImportError>,
{
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => read_json_array(bytes, on_task),
        Some(b'{') => match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => {
                on_task(TaskItem::from_value(value).map_err(|e| item_error(0, e))?)?;
                Ok(1)
            }
            // Several objects on their own lines (two or more, with or without a final newline):
            // JSON Lines, as Label Studio's loader allows.
            Err(whole) if bytes.contains(&b'\n') => read_jsonl(bytes, on_task).map_err(|line_error| {
                if line_error.location == "line 1" {
                    json_syntax_error(&whole)
                } else {
                    line_error
                }
            }),
            Err(whole) => Err(json_syntax_error(&whole)),
        },
        Some(_) => Err(ImportError::at(
            "line 1",
            "a JSON import must be an object or a list of objects",
        )),
        None => Err(ImportError::at("line 1", "the file is empty")),
    }
}

fn json_syntax_error(error: &serde_json::Error) -> ImportError {
    ImportError::at(
        format!("line {} column {}", error.line(), error.column()),
        format!("invalid JSON ({error})"),
    )
}

/// Streams a JSON array element by element through `on_task`.
fn read_json_array<F>(bytes: &[u8], on_task: &mut F) -> Result<usize, ImportError>
where
    F: FnMut(TaskItem) -> Result<(), ImportError>,
{
    struct ArrayVisitor<'a, F> {
        on_task: &'a mut F,
        failure: &'a mut Option<ImportError>,
    }
    impl<'de, F> Visitor<'de> for ArrayVisitor<'_, F>
    where
        F: FnMut(TaskItem) -> Result<(), ImportError>,
    {
        type Value = usize;
        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("a list of tasks")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut index = 0;
            while let Some(value) = seq.next_element::<Value>()? {
                let outcome = TaskItem::from_value(value)
                    .map_err(|e| item_error(index, e))
                    .and_then(|item| (self.on_task)(item));
                if let Err(error) = outcome {
                    *self.failure = Some(error);
                    return Err(de::Error::custom("stopped"));
                }
                index += 1;
            }
            Ok(index)
        }
    }
    impl<'de, F> DeserializeSeed<'de> for ArrayVisitor<'_, F>
    where
        F: FnMut(TaskItem) -> Result<(), ImportError>,
    {
        type Value = usize;
        fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
            deserializer.deserialize_seq(self)
        }
    }

    let mut failure = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let visitor = ArrayVisitor {
        on_task,
        failure: &mut failure,
    };
    let outcome = visitor.deserialize(&mut deserializer);
    if let Some(error) = failure {
        return Err(error);
    }
    let count = outcome.map_err(|e| json_syntax_error(&e))?;
    deserializer.end().map_err(|e| json_syntax_error(&e))?;
    Ok(count)
}

fn read_jsonl<F>(bytes: &[u8], on_task: &mut F) -> Result<usize, ImportError>
where
    F: FnMut(TaskItem) -> Result<(), ImportError>,
{
    let mut count = 0;
    for (number, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let location = || format!("line {}", number + 1);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value =
            serde_json::from_slice(line).map_err(|e| ImportError::at(location(), format!("invalid JSON ({e})")))?;
        let item = TaskItem::from_value(value).map_err(|e| ImportError::at(location(), e))?;
        on_task(item)?;
        count += 1;
    }
    Ok(count)
}

/// Label Studio's rule: `;` if the first line has more semicolons than commas, else `,`.
fn pick_csv_delimiter(bytes: &[u8]) -> u8 {
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let semicolons = first_line.iter().filter(|b| **b == b';').count();
    let commas = first_line.iter().filter(|b| **b == b',').count();
    if semicolons > commas { b';' } else { b',' }
}

fn read_delimited<F>(bytes: &[u8], delimiter: u8, on_task: &mut F) -> Result<usize, ImportError>
where
    F: FnMut(TaskItem) -> Result<(), ImportError>,
{
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::at("row 1", e))?
        .iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    if headers.iter().all(String::is_empty) {
        return Err(ImportError::at("row 1", "the header row is empty"));
    }
    let mut count = 0;
    let mut record = csv::StringRecord::new();
    loop {
        let row_number = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(row_number);
                return Err(ImportError::at(format!("row {line}"), csv_reason(&e)));
            }
        }
        let mut data = Map::new();
        for (header, cell) in headers.iter().zip(record.iter()) {
            data.insert(header.clone(), Value::String(cell.to_string()));
        }
        on_task(TaskItem::from_data(data))?;
        count += 1;
    }
    Ok(count)
}

fn csv_reason(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("expected {expected_len} fields like the header row, found {len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_string(),
        _ => error.to_string(),
    }
}

fn read_text<F>(bytes: &[u8], on_task: &mut F) -> Result<usize, ImportError>
where
    F: FnMut(TaskItem) -> Result<(), ImportError>,
{
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        ImportError::at(format!("line {line}"), "the text is not valid UTF-8")
    })?;
    let mut count = 0;
    for line in text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
    {
        let mut data = Map::new();
        data.insert(UNDEFINED_DATA_KEY.to_string(), Value::String(line.to_string()));
        on_task(TaskItem::from_data(data))?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(bytes: &str, format: ImportFormat) -> Result<Vec<TaskItem>, ImportError> {
        let mut items = Vec::new();
        read_tasks(bytes.as_bytes(), format, |item| {
            items.push(item);
            Ok(())
        })?;
        Ok(items)
    }

    #[test]
    fn json_array_object_and_jsonl() {
        assert_eq!(
            collect(r#"[{"a":1},{"data":{"a":2}}]"#, ImportFormat::Json)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(collect(r#"{"a":1}"#, ImportFormat::Json).unwrap()[0].data["a"], 1);
        let lines = "{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}\n";
        assert_eq!(collect(lines, ImportFormat::Json).unwrap().len(), 3);
        assert_eq!(collect(lines, ImportFormat::Jsonl).unwrap().len(), 3);
        assert_eq!(collect("{\"a\":1}\n{\"a\":2}", ImportFormat::Json).unwrap().len(), 2);
        assert!(collect("[]", ImportFormat::Json).unwrap().is_empty());
    }

    #[test]
    fn json_errors_name_the_place() {
        let error = collect("[{\"a\":1},\n {\"a\":}]", ImportFormat::Json).unwrap_err();
        assert!(error.location.starts_with("line 2"), "{error}");
        let error = collect("[{\"a\":1}, 5]", ImportFormat::Json).unwrap_err();
        assert_eq!(error.location, "item 1");
        let error = collect("{\"a\":1}\n{\"a\":2}\n{oops}\n", ImportFormat::Jsonl).unwrap_err();
        assert_eq!(error.location, "line 3");
        assert!(collect("\"text\"", ImportFormat::Json).is_err());
        assert!(collect("[{\"a\":1}] trailing", ImportFormat::Json).is_err());
    }

    #[test]
    fn csv_tsv_txt() {
        let items = collect("text,label\nhello,\"a, b\"\nbye,\n", ImportFormat::Csv).unwrap();
        assert_eq!(items[0].data["label"], "a, b");
        assert_eq!(items[1].data["label"], "");
        let items = collect("text;label\nx;y\n", ImportFormat::Csv).unwrap();
        assert_eq!(items[0].data["label"], "y");
        let items = collect("text\tlabel\nx\ty\n", ImportFormat::Tsv).unwrap();
        assert_eq!(items[0].data["text"], "x");
        let items = collect("one\n\ntwo\r\n", ImportFormat::Txt).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].data[UNDEFINED_DATA_KEY], "two");
    }

    #[test]
    fn csv_row_with_wrong_field_count_is_named() {
        let error = collect("a,b\n1,2\n3\n", ImportFormat::Csv).unwrap_err();
        assert_eq!(error.location, "row 3");
        assert!(error.reason.contains("expected 2 fields"), "{error}");
    }

    #[test]
    fn callback_errors_stop_the_read() {
        let mut seen = 0;
        let outcome = read_tasks(b"[{\"a\":1},{\"a\":2},{\"a\":3}]", ImportFormat::Json, |_| {
            seen += 1;
            if seen == 2 {
                Err(ImportError::at("item 1", "full"))
            } else {
                Ok(())
            }
        });
        assert_eq!(outcome.unwrap_err().reason, "full");
        assert_eq!(seen, 2);
    }
}
