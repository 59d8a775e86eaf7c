variable "name" {
  description = "Prefix for every resource name."
  type        = string
  default     = "edgemeter"
}

variable "distribution_id" {
  description = "The CloudFront distribution whose logs are metered."
  type        = string
}

variable "log_bucket_name" {
  description = "Name of the bucket CloudFront delivers logs to (created here)."
  type        = string
}

variable "lake_bucket_name" {
  description = "Name of the bucket holding the lake and exports (created here)."
  type        = string
}

variable "lake_prefix" {
  description = "Prefix of the lake inside the lake bucket."
  type        = string
  default     = "lake"
}

variable "log_output_format" {
  description = "Standard logging v2 output format: json or parquet."
  type        = string
  default     = "parquet"
  validation {
    condition     = contains(["json", "parquet"], var.log_output_format)
    error_message = "log_output_format must be json or parquet."
  }
}

variable "log_retention_days" {
  description = "Days raw CloudFront logs are kept."
  type        = number
  default     = 90
}

variable "lake_retain_days" {
  description = "Days of request partitions edgemeter keeps in the lake (--retain-days)."
  type        = number
  default     = 400
}

variable "image" {
  description = "The edgemeter container image (built from the repository's Dockerfile)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with a NAT or S3 endpoint) for the Fargate task."
  type        = list(string)
}

variable "vpc_id" {
  description = "VPC of the subnets."
  type        = string
}

variable "schedule_expression" {
  description = "EventBridge Scheduler expression for the hourly run."
  type        = string
  default     = "cron(17 * * * ? *)"
}

variable "ingest_workers" {
  description = "Ingest tasks started each hour, all consuming the notification queue into the same lake (SQS gives each message to one of them)."
  type        = number
  default     = 1
  validation {
    condition     = var.ingest_workers >= 1 && var.ingest_workers <= 64
    error_message = "ingest_workers must be from 1 to 64."
  }
}

variable "reconcile_schedule_expression" {
  description = "EventBridge Scheduler expression for the daily run that also lists the log prefix (edgemeter --reconcile)."
  type        = string
  default     = "cron(47 3 * * ? *)"
}

variable "notification_visibility_timeout" {
  description = "Seconds a received notification stays hidden (edgemeter extends it while reading); how soon one held by a stopped run comes back."
  type        = number
  default     = 120
}

variable "notification_max_receives" {
  description = "Receipts of one notification before SQS moves it to the dead-letter queue (a message that makes every run fail)."
  type        = number
  default     = 5
}

variable "key_params" {
  description = "Where API keys are found, tried in order (edgemeter --key-from)."
  type        = list(string)
  default     = ["query:api_key", "header:x-api-key", "log-data:api_key"]
}

variable "enable_legacy_logging_bucket_acl" {
  description = "Allow ACLs on the log bucket, which legacy (v1) standard logging needs."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
