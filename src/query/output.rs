//! Writing query results: an aligned table, CSV (RFC 4180 with a header,
//! CRLF line ends), JSON lines or Parquet, to stdout or a file. CSV, JSON and
//! Parquet stream batch by batch.
//!
//! CSV is opened by spreadsheets: a text cell that would run as a formula
//! (`=`, `+`, `-`, `@`, tab or CR first, and not a number) gets a leading
//! `'`, as in the billing exports. A path or user agent a client chose is
//! text, never a formula.

use crate::error::{Error, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::csv::writer::Terminator;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use std::io::Write;
use std::path::Path;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// An aligned text table (the whole result is gathered first).
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
    /// Parquet (zstd), written batch by batch.
    Parquet,
}

/// Writes a result stream in `format` to `output` (stdout when `None` or
/// `-`), creating the file's missing parent directories. Parquet is not
/// written to a terminal.
pub(crate) async fn write(
    stream: SendableRecordBatchStream,
    format: OutputFormat,
    output: Option<&Path>,
) -> Result<u64> {
    let output = output.filter(|p| p.as_os_str() != "-");
    let sink: Box<dyn Write + Send> = match output {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(path).map_err(|e| Error::io(path, e))?,
            ))
        }
        None => {
            use std::io::IsTerminal;
            if format == OutputFormat::Parquet && std::io::stdout().is_terminal() {
                return Err(Error::Config(
                    "Parquet is binary: give --output FILE, or send stdout to a file or pipe"
                        .into(),
                ));
            }
            Box::new(std::io::BufWriter::new(std::io::stdout()))
        }
    };
    write_to(stream, format, sink).await
}

/// Writes a result stream to any writer; returns the number of rows. A
/// reader that went away (`| head`) is [`Error::OutputClosed`].
pub(crate) async fn write_to(
    stream: SendableRecordBatchStream,
    format: OutputFormat,
    sink: Box<dyn Write + Send>,
) -> Result<u64> {
    write_rows(stream, format, sink).await.map_err(|e| {
        let closed = match &e {
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::BrokenPipe,
            Error::Arrow(datafusion::arrow::error::ArrowError::IoError(_, source)) => {
                source.kind() == std::io::ErrorKind::BrokenPipe
            }
            Error::Arrow(_) | Error::Parquet(_) => e.to_string().contains("Broken pipe"),
            _ => false,
        };
        if closed { Error::OutputClosed } else { e }
    })
}

async fn write_rows(
    mut stream: SendableRecordBatchStream,
    format: OutputFormat,
    mut sink: Box<dyn Write + Send>,
) -> Result<u64> {
    let mut rows = 0u64;
    let io = |e: std::io::Error| Error::io("<output>", e);
    match format {
        OutputFormat::Table => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                batches.push(batch);
            }
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(stream.schema()));
            }
            sink.write_all(table(&batches)?.as_bytes()).map_err(io)?;
        }
        OutputFormat::Csv => {
            let mut writer = WriterBuilder::new()
                .with_header(true)
                .with_line_terminator(Terminator::CRLF)
                .build(&mut sink);
            let mut wrote = false;
            while let Some(batch) = stream.next().await {
                let batch = spreadsheet_safe_columns(&batch?)?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
                wrote = true;
            }
            if !wrote {
                writer.write(&RecordBatch::new_empty(stream.schema()))?;
            }
        }
        OutputFormat::Parquet => {
            let props = crate::lake::parquet_io::writer_properties(None);
            let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(
                &mut sink,
                stream.schema(),
                Some(props),
            )?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.close()?;
        }
        OutputFormat::Json => {
            let mut writer = LineDelimitedWriter::new(&mut sink);
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows() as u64;
                writer.write(&batch)?;
            }
            writer.finish()?;
        }
    }
    sink.flush().map_err(io)?;
    Ok(rows)
}

/// Batches as an aligned text table: numbers right-aligned, other values
/// left-aligned, a null `api_key_id` (requests without a key) shown as
/// `(no key)`, other nulls empty.
fn table(batches: &[RecordBatch]) -> Result<String> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let Some(first) = batches.first() else {
        return Ok(String::new());
    };
    let schema = first.schema();
    let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let numeric: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric())
        .collect();
    let options = FormatOptions::default();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let cells = formatters
                .iter()
                .enumerate()
                .map(|(i, f)| match batch.column(i).is_null(row) {
                    true if header[i] == "api_key_id" => "(no key)".to_string(),
                    true => String::new(),
                    false => printable(&f.value(row).to_string()),
                })
                .collect();
            rows.push(cells);
        }
    }
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let rule: String = widths.iter().fold(String::from("+"), |mut line, w| {
        line.push_str(&"-".repeat(w + 2));
        line.push('+');
        line
    });
    let line = |cells: &[String], align_numbers: bool| {
        let mut out = String::from("|");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            let (left, right) = match align_numbers && numeric[i] {
                true => (pad, 0),
                false => (0, pad),
            };
            out.push(' ');
            out.push_str(&" ".repeat(left));
            out.push_str(cell);
            out.push_str(&" ".repeat(right));
            out.push_str(" |");
        }
        out
    };
    let mut out = String::new();
    for text in [rule.clone(), line(&header, false), rule.clone()] {
        out.push_str(&text);
        out.push('\n');
    }
    for row in &rows {
        out.push_str(&line(row, true));
        out.push('\n');
    }
    out.push_str(&rule);
    out.push('\n');
    Ok(out)
}

/// A cell as it can be shown on a terminal: control characters (a client's
/// escape sequences in a user agent) escaped, never sent raw.
fn printable(text: &str) -> String {
    match text.chars().any(char::is_control) {
        false => text.to_string(),
        true => text
            .chars()
            .map(|c| match c.is_control() {
                true => c.escape_default().to_string(),
                false => c.to_string(),
            })
            .collect(),
    }
}

/// Text that a spreadsheet would run as a formula gets a leading `'`.
pub(crate) fn spreadsheet_safe(cell: &str) -> String {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// A batch whose text columns are [`spreadsheet_safe`].
fn spreadsheet_safe_columns(batch: &RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let is_text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_text(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !is_text(field.data_type()) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let text = cast(column, &DataType::Utf8)?;
        let strings = text.as_string::<i32>();
        let safe: StringArray = (0..strings.len())
            .map(|i| {
                strings
                    .is_valid(i)
                    .then(|| spreadsheet_safe(strings.value(i)))
            })
            .collect();
        fields.push(Field::new(
            field.name(),
            DataType::Utf8,
            field.is_nullable(),
        ));
        columns.push(std::sync::Arc::new(safe));
    }
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_shaped_text_is_neutralised_but_numbers_are_not() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(
            spreadsheet_safe("+1+cmd|' /C calc'!A0"),
            "'+1+cmd|' /C calc'!A0"
        );
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("\tx"), "'\tx");
        assert_eq!(spreadsheet_safe("-12.50"), "-12.50");
        assert_eq!(spreadsheet_safe("Acme Corp"), "Acme Corp");
    }

    /// The table `--format table` prints, from fixed rows over two batches:
    /// numbers right-aligned, text left-aligned, a null key shown as
    /// `(no key)`, other nulls empty, control characters escaped, widths
    /// counted in characters (`é`).
    #[test]
    fn tables_align_and_escape() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("api_key_id", DataType::Utf8, true),
            Field::new("user_agent", DataType::Utf8, true),
            Field::new("requests", DataType::Int64, true),
        ]));
        let batch =
            |ids: Vec<Option<&str>>, agents: Vec<Option<&str>>, requests: Vec<Option<i64>>| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        std::sync::Arc::new(StringArray::from(ids)),
                        std::sync::Arc::new(StringArray::from(agents)),
                        std::sync::Arc::new(Int64Array::from(requests)),
                    ],
                )
                .unwrap()
            };
        let batches = [
            batch(
                vec![Some("3f2a"), None],
                vec![Some("curl/8.7.1"), Some("caf\u{e9}")],
                vec![Some(1_204), Some(7)],
            ),
            batch(
                vec![Some("9b"), Some("0c1d")],
                vec![Some("x\u{1b}[31m"), None],
                vec![None, Some(42)],
            ),
        ];
        insta::assert_snapshot!(table(&batches).unwrap());
        // No rows at all: the header alone.
        insta::assert_snapshot!(table(&[RecordBatch::new_empty(schema.clone())]).unwrap());
    }
}
