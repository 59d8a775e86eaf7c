//! Writing query results: an aligned table, CSV (RFC 4180 with a header) or
//! JSON lines, to stdout or a file. CSV and JSON stream batch by batch.
//!
//! CSV is opened by spreadsheets: a text cell that would run as a formula
//! (`=`, `+`, `-`, `@`, tab or CR first, and not a number) gets a leading
//! `'`, as in the billing exports. A path or user agent a client chose is
//! text, never a formula.

use crate::error::{Error, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use std::io::Write;
use std::path::Path;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table (the whole result is gathered first).
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
    /// Parquet (zstd), written batch by batch.
    Parquet,
}

/// Writes a result stream in `format` to `output` (stdout when `None`).
pub async fn write(
    stream: SendableRecordBatchStream,
    format: OutputFormat,
    output: Option<&Path>,
) -> Result<u64> {
    let sink: Box<dyn Write + Send> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| Error::io(path, e))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    write_to(stream, format, sink).await
}

/// Writes a result stream to any writer; returns the number of rows.
pub async fn write_to(
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
            writeln!(sink, "{}", pretty_format_batches(&batches)?).map_err(io)?;
        }
        OutputFormat::Csv => {
            let mut writer = WriterBuilder::new().with_header(true).build(&mut sink);
            let mut wrote = false;
            while let Some(batch) = stream.next().await {
                let batch = spreadsheet_safe(&batch?)?;
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

/// A batch whose text columns are [`crate::export::formats::spreadsheet_safe`].
fn spreadsheet_safe(batch: &RecordBatch) -> Result<RecordBatch> {
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
                    .then(|| crate::export::formats::spreadsheet_safe(strings.value(i)))
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
