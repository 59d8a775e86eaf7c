# Athena/Glue over the same Parquet files, from schemas/requests.schema.json,
# for when a user outgrows one machine. Partitions are projected (no crawler).

locals {
  schema = jsondecode(file("${path.module}/../../schemas/requests.schema.json"))
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

resource "aws_glue_catalog_table" "requests" {
  name          = "requests"
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
    "storage.location.template" = "s3://${aws_s3_bucket.lake.bucket}/${var.lake_prefix}/requests/dt=$${dt}/hour=$${hour}/"
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
    location      = "s3://${aws_s3_bucket.lake.bucket}/${var.lake_prefix}/requests/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }
    dynamic "columns" {
      for_each = local.schema.columns
      content {
        name = columns.value.name
        type = local.glue_types[columns.value.type]
      }
    }
  }
}
