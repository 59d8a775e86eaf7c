//! One version of a Delta table as a plain Parquet scan: exactly the data
//! files its snapshot lists, each with the partition values (`dt`, `hour`)
//! its Add action carries, read with the table's own schema.
//!
//! This is how a table travels to a Ballista cluster. delta-rs 1.1 ships a
//! logical codec for its table provider, but no physical codec for the scan it
//! plans (`DeltaScanExec`), and a Ballista scheduler sends executors physical
//! plans. In process, the rollups are read this way too: DataFusion's scan
//! gives a file's partition values as constants, where delta-rs's builds them
//! row by row. A listing of the table's directory (DataFusion's `ListingTable`)
//! would read files that later versions removed and that `maintain` has not
//! vacuumed yet, and cannot be restricted to a version or to the rollup files
//! that pair with their hour. So the client resolves the snapshot into its
//! file list (this [`LakeFiles`], sent to the scheduler by
//! [`super::cluster::LakeCodec`]); the scheduler prunes partitions with the
//! query's filters and plans DataFusion's own Parquet scan, which
//! datafusion-proto sends to executors as it is. The rows are the snapshot's
//! rows: the tables are written by edgemeter without deletion vectors or
//! column mapping, and a table with either is refused rather than misread.

use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::lake::delta::{self, TableDef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::{expr_applicable_for_cols, filter_partitioned_file};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use deltalake::DeltaTable;
use std::sync::Arc;

/// A table version's data files, scanned as Parquet.
#[derive(Debug, Clone)]
pub(crate) struct LakeFiles {
    /// The table's schema: file columns, then the partition columns.
    schema: SchemaRef,
    wire: Wire,
}

/// What [`LakeFiles`] sends over the wire; the schema travels in the plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Wire {
    /// The store the files are in: `file://` or `s3://bucket`.
    store: String,
    /// The partition columns, the last columns of the schema.
    partition_by: Vec<String>,
    files: Vec<DataFile>,
}

/// One data file: its location in the store, size and partition values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct DataFile {
    path: String,
    size: u64,
    partition: Vec<String>,
}

impl LakeFiles {
    /// The files of `table` (none when the table does not exist yet), or only
    /// those of them whose paths (relative to the table) `only` lists.
    pub(crate) fn of_snapshot(
        lake: &Lake,
        def: &TableDef,
        table: Option<&DeltaTable>,
        only: Option<&[String]>,
    ) -> Result<Self> {
        let mut files = Vec::new();
        if let Some(table) = table {
            let snapshot = table.snapshot()?;
            // Files whose columns are named by the table's schema: no
            // column mapping ("none" is the same as none).
            if let Some(mode) = snapshot
                .metadata()
                .configuration()
                .get("delta.columnMapping.mode")
                .filter(|mode| !mode.eq_ignore_ascii_case("none"))
            {
                return Err(Error::Lake(format!(
                    "{} maps its columns ({mode}), which a cluster scan does not read",
                    def.dir
                )));
            }
            for file in snapshot.log_data().iter() {
                let path = file.path().into_owned();
                if only.is_some_and(|only| !only.contains(&path)) {
                    continue;
                }
                if file.deletion_vector_descriptor().is_some() {
                    return Err(Error::Lake(format!(
                        "{}/{path} has a deletion vector, which a cluster scan does not apply",
                        def.dir
                    )));
                }
                let values = file.partition_values_map();
                files.push(DataFile {
                    path: delta::file_location(lake, def, &path).to_string(),
                    size: u64::try_from(file.size()).unwrap_or_default(),
                    partition: def
                        .partition_by
                        .iter()
                        .map(|c| values.get(*c).cloned().flatten().unwrap_or_default())
                        .collect(),
                });
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let url = lake.url();
        let store = match url.scheme() {
            "file" => "file://".to_string(),
            scheme => format!("{scheme}://{}", url.host_str().unwrap_or_default()),
        };
        Ok(Self {
            schema: def.schema(),
            wire: Wire {
                store,
                partition_by: def.partition_by.iter().map(|c| c.to_string()).collect(),
                files,
            },
        })
    }

    /// The same files with the data files' strings read as views
    /// (`Utf8View`); the partition columns stay plain strings.
    pub(crate) fn with_file_strings_as_views(mut self) -> Self {
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                let view = f.data_type() == &DataType::Utf8 && !self.is_partition_column(f.name());
                match view {
                    true => f.as_ref().clone().with_data_type(DataType::Utf8View),
                    false => f.as_ref().clone(),
                }
            })
            .collect();
        self.schema = Arc::new(Schema::new_with_metadata(
            fields,
            self.schema.metadata().clone(),
        ));
        self
    }

    /// What the codec sends.
    pub(crate) fn wire(&self) -> &Wire {
        &self.wire
    }

    /// The provider again, from what the codec received and the table's
    /// schema in the plan.
    pub(crate) fn from_wire(wire: Wire, schema: SchemaRef) -> DfResult<Self> {
        for column in &wire.partition_by {
            schema.field_with_name(column)?;
        }
        if wire
            .files
            .iter()
            .any(|f| f.partition.len() != wire.partition_by.len())
        {
            return Err(DataFusionError::Plan(
                "a lake file without a value for each partition column".into(),
            ));
        }
        Ok(Self { schema, wire })
    }

    fn is_partition_column(&self, name: &str) -> bool {
        self.wire.partition_by.iter().any(|c| c == name)
    }

    /// The partition columns, as the schema has them.
    fn partition_fields(&self) -> Vec<FieldRef> {
        self.schema
            .fields()
            .iter()
            .filter(|f| self.is_partition_column(f.name()))
            .cloned()
            .collect()
    }

    /// The schema of the data files: every column but the partition columns.
    fn file_schema(&self) -> SchemaRef {
        let fields: Vec<FieldRef> = self
            .schema
            .fields()
            .iter()
            .filter(|f| !self.is_partition_column(f.name()))
            .cloned()
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// True when a filter reads the partition columns only, so it is
    /// decided for each file by its partition values.
    fn decides_partitions(&self, filter: &Expr) -> bool {
        let columns: Vec<&str> = self.wire.partition_by.iter().map(String::as_str).collect();
        !columns.is_empty() && expr_applicable_for_cols(&columns, filter)
    }

    /// The files whose partition values pass every partition filter.
    fn pruned(&self, filters: &[Expr]) -> DfResult<Vec<PartitionedFile>> {
        let partition_filters: Vec<Expr> = filters
            .iter()
            .filter(|f| self.decides_partitions(f))
            .cloned()
            .collect();
        let columns = DFSchema::from_unqualified_fields(
            self.wire
                .partition_by
                .iter()
                .map(|c| Field::new(c, DataType::Utf8, true))
                .collect(),
            Default::default(),
        )?;
        let mut kept = Vec::new();
        for file in &self.wire.files {
            let values = file
                .partition
                .iter()
                .map(|v| ScalarValue::Utf8(Some(v.clone())))
                .collect();
            let candidate =
                PartitionedFile::new(file.path.clone(), file.size).with_partition_values(values);
            if let Some(file) = filter_partitioned_file(candidate, &partition_filters, &columns)? {
                kept.push(file);
            }
        }
        Ok(kept)
    }
}

/// `files` dealt round-robin into at most `groups` groups, one per
/// partition of the scan.
fn deal(files: Vec<PartitionedFile>, groups: usize) -> Vec<FileGroup> {
    let groups = groups.clamp(1, files.len().max(1));
    let mut dealt: Vec<Vec<PartitionedFile>> = (0..groups).map(|_| Vec::new()).collect();
    for (i, file) in files.into_iter().enumerate() {
        dealt[i % groups].push(file);
    }
    dealt.into_iter().map(FileGroup::new).collect()
}

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for LakeFiles {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // A partition filter is decided exactly by the files kept; the others
        // stay above the scan (and prune row groups inside it).
        Ok(filters
            .iter()
            .map(|f| {
                if self.decides_partitions(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // No file left is still a Parquet scan (of one empty group), not an
        // `EmptyExec`: Ballista 55 loses track of a stage's metrics when an
        // `EmptyExec` is one input of a union, and the job never finishes.
        let files = self.pruned(filters)?;
        let table_schema = TableSchema::builder(self.file_schema())
            .with_table_partition_cols(self.partition_fields())
            .build();
        let source = ParquetSource::new(table_schema)
            .with_table_parquet_options(state.table_options().parquet.clone());
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::parse(&self.wire.store)?, Arc::new(source))
                .with_file_groups(deal(files, state.config().target_partitions()))
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn lake_files(files: &[(&str, &str, &str)]) -> LakeFiles {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("dt", DataType::Utf8, false),
            Field::new("hour", DataType::Utf8, false),
        ]));
        let wire = Wire {
            store: "file://".into(),
            partition_by: vec!["dt".into(), "hour".into()],
            files: files
                .iter()
                .map(|(path, dt, hour)| DataFile {
                    path: path.to_string(),
                    size: 1,
                    partition: vec![dt.to_string(), hour.to_string()],
                })
                .collect(),
        };
        LakeFiles::from_wire(wire, schema).unwrap()
    }

    #[test]
    fn only_the_data_files_strings_are_read_as_views() {
        let mut table = lake_files(&[("a.parquet", "2025-10-05", "13")]);
        let mut schema = (*table.schema).clone();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.insert(1, Field::new("key", DataType::Utf8, true));
        schema = Schema::new(fields);
        table.schema = Arc::new(schema);
        let viewed = table.with_file_strings_as_views();
        let types: Vec<(&str, &DataType)> = viewed
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        assert_eq!(
            types,
            [
                ("n", &DataType::Int64),
                ("key", &DataType::Utf8View),
                ("dt", &DataType::Utf8),
                ("hour", &DataType::Utf8),
            ]
        );
    }

    fn kept(table: &LakeFiles, filters: &[Expr]) -> Vec<String> {
        table
            .pruned(filters)
            .unwrap()
            .iter()
            .map(|f| f.object_meta.location.to_string())
            .collect()
    }

    #[test]
    fn partition_filters_keep_exactly_their_files() {
        let table = lake_files(&[
            ("t/dt=2025-10-05/hour=09/a.parquet", "2025-10-05", "09"),
            ("t/dt=2025-10-05/hour=10/b.parquet", "2025-10-05", "10"),
            ("t/dt=2025-10-06/hour=00/c.parquet", "2025-10-06", "00"),
        ]);
        assert_eq!(kept(&table, &[]).len(), 3);
        let one_hour = [col("dt").eq(lit("2025-10-05")), col("hour").eq(lit("10"))];
        assert_eq!(
            kept(&table, &one_hour),
            vec!["t/dt=2025-10-05/hour=10/b.parquet"]
        );
        let day = [
            col("dt").gt_eq(lit("2025-10-05")),
            col("dt").lt_eq(lit("2025-10-05")),
        ];
        assert_eq!(kept(&table, &day).len(), 2);
        // A filter on a file column prunes nothing here (it stays above the scan).
        assert_eq!(kept(&table, &[col("n").eq(lit(1i64))]).len(), 3);
        assert!(table.decides_partitions(&one_hour[0]));
        assert!(!table.decides_partitions(&col("n").eq(lit(1i64))));
        assert!(kept(&table, &[col("dt").eq(lit("1999-01-01"))]).is_empty());
    }

    #[test]
    fn files_are_dealt_into_the_scans_partitions() {
        let files: Vec<PartitionedFile> = (0..5)
            .map(|i| PartitionedFile::new(format!("f{i}"), 1))
            .collect();
        let sizes = |groups: Vec<FileGroup>| groups.iter().map(FileGroup::len).collect::<Vec<_>>();
        assert_eq!(sizes(deal(files.clone(), 2)), vec![3, 2]);
        assert_eq!(sizes(deal(files.clone(), 8)), vec![1; 5]);
        assert_eq!(sizes(deal(files, 0)), vec![5]);
        assert_eq!(sizes(deal(Vec::new(), 4)), vec![0]);
    }

    #[test]
    fn a_file_without_its_partition_values_is_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("dt", DataType::Utf8, false)]));
        let wire = Wire {
            store: "file://".into(),
            partition_by: vec!["dt".into()],
            files: vec![DataFile {
                path: "x".into(),
                size: 1,
                partition: vec![],
            }],
        };
        assert!(LakeFiles::from_wire(wire.clone(), schema).is_err());
        let other = Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, false)]));
        assert!(LakeFiles::from_wire(wire, other).is_err());
    }
}
