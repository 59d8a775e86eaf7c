//! Encoding and decoding whole Parquet files held in memory, with the lake's
//! writer settings in one place.

use crate::error::{Error, Result};
use crate::schema::requests_schema;
use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::column::writer::ColumnCloseResult;
use datafusion::parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader, SortingColumn,
};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::writer::SerializedFileWriter;
use std::ops::Range;

/// Rows per row group: large enough for good compression, small enough that a
/// reader can skip by statistics.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Rows the writer encodes at a time between its checks of page size and
/// statistics. The default (1,024) spent a share of encoding in those checks:
/// 8,192 made ingest 3% faster on the benchmark, and the lake's size did not
/// change. Pages end at the first step past the writer's 20,000-row limit:
/// 24,576 rows instead of 20,480.
const WRITE_BATCH_ROWS: usize = 8 * 1024;

/// Columns of `requests` whose values seldom repeat within an hour.
const UNIQUE_ISH_COLUMNS: &[&str] = &[
    "timestamp",
    "x_edge_request_id",
    "cs_uri_stem",
    "cs_uri_query",
    "c_ip",
    "c_port",
    "sc_bytes",
    "cs_bytes",
    "sc_content_len",
    "time_taken",
    "time_to_first_byte",
    "source_line",
];

/// String columns that keep min/max statistics: the one rows are sorted and
/// filtered by. Other string columns (URIs, user agents, request ids) are never
/// pruned on, and their min/max cost two comparisons per value to compute.
const STRING_STATISTICS_COLUMNS: &[&str] = &["api_key_id"];

/// The column whose values a merge looks up in a file without reading it: a
/// late request is checked against an hour's kept files by their bloom
/// filters on it, and a file is read only when one may hold the request.
pub(crate) const BLOOM_COLUMN: &str = "x_edge_request_id";

/// The bloom filters' false positive rate: a late log of 500 requests into an
/// hour finds a false match in a kept file one time in twenty, and that file
/// is then read as if there were no filter. The writer folds each filter to
/// the smallest size with this rate (about 2.5 bytes a request).
const BLOOM_FPP: f64 = 1e-4;

/// Writer settings for lake files: zstd, dictionaries, page statistics on
/// numbers and on the string columns readers prune by, and the sort order
/// declared when the rows are sorted.
pub(crate) fn writer_properties(sorted_by: Option<Vec<SortingColumn>>) -> WriterProperties {
    // zstd level 1 rather than 3, and no dictionaries for columns whose values
    // rarely repeat: on the benchmark, ingest CPU time fell by about a tenth and
    // the lake came out 6% smaller (dictionary pages that would be abandoned
    // anyway are no longer built).
    let zstd = ZstdLevel::try_new(1).unwrap_or_default();
    let mut builder = WriterProperties::builder();
    for column in UNIQUE_ISH_COLUMNS {
        builder = builder.set_column_dictionary_enabled((*column).into(), false);
    }
    let strings = requests_schema();
    let strings = strings
        .fields()
        .iter()
        .filter(|f| f.data_type() == &DataType::Utf8)
        .map(|f| f.name())
        .filter(|name| !STRING_STATISTICS_COLUMNS.contains(&name.as_str()));
    for column in strings {
        builder =
            builder.set_column_statistics_enabled(column.as_str().into(), EnabledStatistics::None);
    }
    builder
        .set_compression(Compression::ZSTD(zstd))
        .set_write_batch_size(WRITE_BATCH_ROWS)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(sorted_by)
        .set_created_by(format!("edgemeter {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// `requests` files of fewer rows than this are compressed with Snappy, not
/// zstd. The Parquet writer makes a zstd compressor and decompressor for each
/// column chunk, and every reader of the file a pair more; each context asks
/// the CPU for its features, an instruction that traps in a virtual machine
/// (7-10 µs each on the benchmark machine). For files of late requests, about
/// 400 rows into an hour, that was 17% of a late run's CPU time, while zstd
/// kept each file only 22 KB smaller (`bench/RESULTS.md`, "Small runs").
pub(crate) const SMALL_FILE_ROWS: usize = 4096;

/// Writer settings for a `requests` file of `rows` rows: the lake's, Snappy
/// below [`SMALL_FILE_ROWS`], and a bloom filter of its request ids sized for
/// them (a filter sized for a whole row group, then folded, costs a small file
/// more than its rows).
pub(crate) fn requests_writer_properties(
    sorted_by: Option<Vec<SortingColumn>>,
    rows: usize,
) -> WriterProperties {
    let ndv = rows.clamp(1, ROW_GROUP_ROWS) as u64;
    let mut builder = writer_properties(sorted_by).into_builder();
    if rows < SMALL_FILE_ROWS {
        builder = builder.set_compression(Compression::SNAPPY);
    }
    builder
        .set_column_bloom_filter_enabled(BLOOM_COLUMN.into(), true)
        .set_column_bloom_filter_fpp(BLOOM_COLUMN.into(), BLOOM_FPP)
        .set_column_bloom_filter_max_ndv(BLOOM_COLUMN.into(), ndv)
        .build()
}

/// Writer settings for rollup files: the lake's, compressed with Snappy.
pub(crate) fn rollup_writer_properties(sorted_by: Option<Vec<SortingColumn>>) -> WriterProperties {
    writer_properties(sorted_by)
        .into_builder()
        .set_compression(Compression::SNAPPY)
        .build()
}

/// Encodes batches as one Parquet file.
pub(crate) fn encode(
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

/// Encodes `rows` rows as one Parquet file, one column at a time:
/// `column(i, rows)` gives column `i`'s values for a row group's range of rows
/// (row groups as long as the properties' row count limit).
///
/// Unlike [`encode`], the rows never exist as one batch. Each column is made,
/// encoded while it is still in cache and dropped before the next is made, so
/// a caller that reorders rows holds one reordered column at a time, not all.
pub(crate) fn encode_by_column(
    schema: &SchemaRef,
    rows: usize,
    properties: WriterProperties,
    mut column: impl FnMut(usize, Range<usize>) -> Result<ArrayRef>,
) -> Result<Bytes> {
    let group_rows = properties
        .max_row_group_row_count()
        .unwrap_or(ROW_GROUP_ROWS)
        .max(1);
    let mut out = Vec::new();
    let (mut writer, factory) = ArrowWriter::try_new(&mut out, schema.clone(), Some(properties))?
        .into_serialized_writer()?;
    for (group, start) in (0..rows).step_by(group_rows).enumerate() {
        let range = start..rows.min(start + group_rows);
        let encoders = factory.create_column_writers(group)?;
        if encoders.len() != schema.fields().len() {
            return Err(Error::Lake(
                "nested columns cannot be encoded one at a time".into(),
            ));
        }
        let mut row_group = writer.next_row_group()?;
        for ((i, field), mut encoder) in schema.fields().iter().enumerate().zip(encoders) {
            let values = column(i, range.clone())?;
            for leaf in compute_leaves(field, &values)? {
                encoder.write(&leaf)?;
            }
            encoder.close()?.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
    }
    writer.close()?;
    Ok(Bytes::from(out))
}

/// Writes `batch` as one row group of `writer`, column by column (the
/// writer and factory of [`ArrowWriter::into_serialized_writer`]); `group`
/// is the row group's index in the file.
pub(crate) fn write_row_group<W: std::io::Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    factory: &ArrowRowGroupWriterFactory,
    group: usize,
    batch: &RecordBatch,
) -> Result<()> {
    let schema = batch.schema();
    let mut row_group = writer.next_row_group()?;
    let encoders = factory.create_column_writers(group)?;
    if encoders.len() != schema.fields().len() {
        return Err(Error::Lake(
            "nested columns cannot be encoded one at a time".into(),
        ));
    }
    for ((field, values), mut encoder) in schema.fields().iter().zip(batch.columns()).zip(encoders)
    {
        for leaf in compute_leaves(field, values)? {
            encoder.write(&leaf)?;
        }
        encoder.close()?.append_to_row_group(&mut row_group)?;
    }
    row_group.close()?;
    Ok(())
}

/// Copies every row group of the Parquet file `data` (whose footer is
/// `metadata`) into `writer` as it is, encoded bytes and all: nothing is
/// decoded. The file must have the writer's columns, in its order.
pub(crate) fn copy_row_groups<W: std::io::Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    data: &Bytes,
    metadata: &ParquetMetaData,
) -> Result<()> {
    let column_indexes = metadata.column_index();
    let offset_indexes = metadata.offset_index();
    for (g, group) in metadata.row_groups().iter().enumerate() {
        let mut out = writer.next_row_group()?;
        for (c, column) in group.columns().iter().enumerate() {
            let rows = u64::try_from(group.num_rows()).unwrap_or_default();
            out.append_column(
                data,
                ColumnCloseResult {
                    bytes_written: u64::try_from(column.compressed_size()).unwrap_or_default(),
                    rows_written: rows,
                    metadata: column.clone(),
                    bloom_filter: None,
                    column_index: column_indexes
                        .and_then(|i| i.get(g))
                        .and_then(|i| i.get(c))
                        .cloned(),
                    offset_index: offset_indexes
                        .and_then(|i| i.get(g))
                        .and_then(|i| i.get(c))
                        .cloned(),
                },
            )?;
        }
        out.close()?;
    }
    Ok(())
}

/// The footer of the Parquet file `data`, with its page index when it has one.
pub(crate) fn footer(data: &Bytes) -> Result<ParquetMetaData> {
    Ok(ParquetMetaDataReader::new()
        .with_page_index_policy(PageIndexPolicy::Optional)
        .parse_and_finish(data)?)
}

/// Decodes a whole Parquet file.
pub(crate) fn decode(data: Bytes) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)?
        .with_batch_size(64 * 1024)
        .build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Decodes a whole Parquet file as batches of `schema`, taking its columns by
/// name: a column the file lacks (written before the column was added) is
/// all null.
pub(crate) fn decode_as(data: Bytes, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    decode(data)?
        .into_iter()
        .map(|batch| {
            if batch.schema() == *schema {
                return Ok(batch);
            }
            let columns = schema
                .fields()
                .iter()
                .map(|f| match batch.column_by_name(f.name()) {
                    Some(column) => Ok(column.clone()),
                    None if f.is_nullable() => Ok(datafusion::arrow::array::new_null_array(
                        f.data_type(),
                        batch.num_rows(),
                    )),
                    None => Err(Error::Lake(format!("the file lacks column {}", f.name()))),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect()
}

/// Decodes the named columns of a Parquet file (those it has), in the
/// file's order.
pub(crate) fn decode_columns(data: Bytes, columns: &[&str]) -> Result<Vec<RecordBatch>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(data)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    use std::sync::Arc;

    /// Column by column, in row groups of 3 rows, the file holds what one
    /// batch written whole holds.
    #[test]
    fn encoding_by_column_splits_row_groups_and_keeps_every_value() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let s = StringArray::from(vec![
            Some("a"),
            None,
            Some("c"),
            Some("d"),
            None,
            Some("f"),
            Some("g"),
        ]);
        let n = Int64Array::from_iter_values(1..=7);
        let whole = RecordBatch::try_new(schema.clone(), vec![Arc::new(s), Arc::new(n)]).unwrap();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(3))
            .build();
        let mut asked = Vec::new();
        let file = encode_by_column(&schema, whole.num_rows(), properties, |i, rows| {
            asked.push((i, rows.clone()));
            Ok(whole.column(i).slice(rows.start, rows.len()))
        })
        .unwrap();
        assert_eq!(
            asked,
            vec![
                (0, 0..3),
                (1, 0..3),
                (0, 3..6),
                (1, 3..6),
                (0, 6..7),
                (1, 6..7)
            ]
        );
        let reader = SerializedFileReader::new(file.clone()).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 3);
        let decoded = decode(file).unwrap();
        let decoded = datafusion::arrow::compute::concat_batches(&schema, &decoded).unwrap();
        assert_eq!(decoded, whole);
        assert_eq!(decoded.column(0).null_count(), 2);
    }
}
