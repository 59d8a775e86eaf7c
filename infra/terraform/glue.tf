# Athena/Glue over the lake's Delta tables, one Glue table per lake table (raw
# `requests`, the hourly `usage_hourly` rollup and its narrow
# `usage_hourly_keys`, by key and status alone). Registered as Athena's
# `CREATE EXTERNAL TABLE … TBLPROPERTIES ('table_type'='DELTA')` registers
# them: a location and the table type, no columns and no partitions, since
# Athena reads the schema, the partitions and the current files from each
# table's `_delta_log` (schemas/<table>.athena.sql is the same in SQL).

locals {
  tables = ["requests", "usage_hourly", "usage_hourly_keys"]
}

resource "aws_glue_catalog_database" "edgemeter" {
  name = replace(var.name, "-", "_")
}

resource "aws_glue_catalog_table" "lake" {
  for_each      = toset(local.tables)
  name          = each.key
  database_name = aws_glue_catalog_database.edgemeter.name
  table_type    = "EXTERNAL_TABLE"
  parameters = {
    "table_type"     = "DELTA"
    "classification" = "delta"
  }
  storage_descriptor {
    location = "s3://${aws_s3_bucket.lake.bucket}/${var.lake_prefix}/${each.key}/"
  }
}

# The requests table was a single resource before the rollup had one too.
moved {
  from = aws_glue_catalog_table.requests
  to   = aws_glue_catalog_table.lake["requests"]
}
