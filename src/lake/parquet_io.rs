//! Encoding and decoding whole Parquet files held in memory, with the lake's
//! writer settings in one place.

use crate::error::Result;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

/// Rows per row group: large enough for good compression, small enough that a
/// reader can skip by statistics.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Writer settings for lake files: zstd, dictionaries, page statistics, and the
/// sort order declared when the rows are sorted.
pub fn writer_properties(sorted_by: Option<Vec<SortingColumn>>) -> WriterProperties {
    let level = std::env::var("EXP_ZSTD").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let zstd = ZstdLevel::try_new(level).unwrap_or_default();
    let mut b = WriterProperties::builder();
    if let Ok(cols) = std::env::var("EXP_NODICT") {
        for c in cols.split(',') {
            b = b.set_column_dictionary_enabled(c.into(), false);
        }
    }
    b
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(sorted_by)
        .set_created_by(format!("edgemeter {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Encodes batches as one Parquet file.
pub fn encode(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    properties: WriterProperties,
) -> Result<Bytes> {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(properties))?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(Bytes::from(out))
}

/// Decodes a whole Parquet file.
pub fn decode(data: Bytes) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)?
        .with_batch_size(64 * 1024)
        .build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}
