# Athena/Glue over the same Parquet files, one table per lake table (raw
# `requests` and the hourly `usage_hourly` rollup), columns read from
# schemas/<table>.schema.json. Partitions are projected (no crawler).

locals {
  tables = {
    for table in ["requests", "usage_hourly"] :
    table => jsondecode(file("${path.module}/../../schemas/${table}.schema.json"))
  }
  glue_types = {
    "Utf8"                        = "string"
    "Int16"                       = "smallint"
    "Int32"                       = "int"
    "Int64"                       = "bigint"
    "Float64"                     = "double"
    "Timestamp(Millisecond, UTC)" = "timestamp"
  }
}

resource "aws_glue_catalog_database" "edgemeter" {
  name = replace(var.name, "-", "_")
}

resource "aws_glue_catalog_table" "lake" {
  for_each      = local.tables
  name          = each.key
  database_name = aws_glue_catalog_database.edgemeter.name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    "classification"            = "parquet"
    "projection.enabled"        = "true"
    "projection.dt.type"        = "date"
    "projection.dt.format"      = "yyyy-MM-dd"
    "projection.dt.range"       = "2008-01-01,NOW"
    "projection.hour.type"      = "integer"
    "projection.hour.range"     = "0,23"
    "projection.hour.digits"    = "2"
    "storage.location.template" = "s3://${aws_s3_bucket.lake.bucket}/${var.lake_prefix}/${each.key}/dt=$${dt}/hour=$${hour}/"
  }
  partition_keys {
    name = "dt"
    type = "string"
  }
  partition_keys {
    name = "hour"
    type = "string"
  }
  storage_descriptor {
    location      = "s3://${aws_s3_bucket.lake.bucket}/${var.lake_prefix}/${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }
    dynamic "columns" {
      for_each = each.value.columns
      content {
        name = columns.value.name
        type = local.glue_types[columns.value.type]
      }
    }
  }
}

# The requests table was a single resource before the rollup had one too.
moved {
  from = aws_glue_catalog_table.requests
  to   = aws_glue_catalog_table.lake["requests"]
}
