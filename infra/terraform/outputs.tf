output "log_bucket" {
  description = "Bucket CloudFront delivers logs to."
  value       = aws_s3_bucket.logs.bucket
}

output "lake_url" {
  description = "The lake, for edgemeter --lake (usage, query, export)."
  value       = local.lake_url
}

output "api_key_function_arn" {
  description = "Associate with the distribution's cache behaviours as a viewer-request function."
  value       = aws_cloudfront_function.api_key_to_log.arn
}

output "key_secret_arn" {
  description = "Secrets Manager secret for EDGEMETER_KEY_SECRET: put a long random value in it before the first run."
  value       = aws_secretsmanager_secret.key_secret.arn
}

output "config_parameter" {
  description = "SSM parameter holding an edgemeter.toml equivalent of the task's settings."
  value       = aws_ssm_parameter.config.name
}

output "glue_table" {
  description = "Athena table over the lake's requests."
  value       = "${aws_glue_catalog_database.edgemeter.name}.${aws_glue_catalog_table.lake["requests"].name}"
}

output "glue_usage_table" {
  description = "Athena table over the lake's usage_hourly rollup."
  value       = "${aws_glue_catalog_database.edgemeter.name}.${aws_glue_catalog_table.lake["usage_hourly"].name}"
}

output "notification_queue_url" {
  description = "The queue of the log bucket's notifications, for edgemeter --source sqs://URL."
  value       = aws_sqs_queue.notifications.url
}

output "notification_dead_letter_queue_url" {
  description = "Where notifications whose objects cannot be read go (edgemeter --dead-letter-queue)."
  value       = aws_sqs_queue.notifications_dlq.url
}
