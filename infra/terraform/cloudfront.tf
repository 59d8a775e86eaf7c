# CloudFront standard logging v2 to S3 (Hive-compatible paths) with
# viewer-request-log-data selected, and the function that fills it with the
# API key from the x-api-key header. Attach the function to the distribution's
# cache behaviours (viewer-request) in the distribution's own configuration:
#   function_association { event_type = "viewer-request", function_arn = module.edgemeter.api_key_function_arn }

data "aws_cloudfront_distribution" "metered" {
  id = var.distribution_id
}

resource "aws_cloudfront_function" "api_key_to_log" {
  name    = "${var.name}-api-key-to-log"
  runtime = "cloudfront-js-2.0"
  comment = "Copies x-api-key into viewer-request-log-data for edgemeter"
  publish = true
  code    = file("${path.module}/../cloudfront-function/api-key-to-log.js")
}

# Log delivery for CloudFront is configured in us-east-1.
resource "aws_cloudwatch_log_delivery_source" "cloudfront" {
  name         = "${var.name}-cloudfront"
  log_type     = "ACCESS_LOGS"
  resource_arn = data.aws_cloudfront_distribution.metered.arn
}

resource "aws_cloudwatch_log_delivery_destination" "s3" {
  name          = "${var.name}-s3"
  output_format = var.log_output_format
  delivery_destination_configuration {
    destination_resource_arn = "${aws_s3_bucket.logs.arn}/cloudfront"
  }
}

resource "aws_cloudwatch_log_delivery" "cloudfront_to_s3" {
  delivery_source_name     = aws_cloudwatch_log_delivery_source.cloudfront.name
  delivery_destination_arn = aws_cloudwatch_log_delivery_destination.s3.arn
  record_fields = [
    "date", "time", "timestamp(ms)", "x-edge-location", "sc-bytes", "c-ip", "cs-method",
    "cs(Host)", "cs-uri-stem", "sc-status", "cs(Referer)", "cs(User-Agent)", "cs-uri-query",
    "cs(Cookie)", "x-edge-result-type", "x-edge-request-id", "x-host-header", "cs-protocol",
    "cs-bytes", "time-taken", "x-forwarded-for", "ssl-protocol", "ssl-cipher",
    "x-edge-response-result-type", "cs-protocol-version", "c-port", "time-to-first-byte",
    "x-edge-detailed-result-type", "sc-content-type", "sc-content-len", "c-country", "asn",
    "cache-behavior-path-pattern", "viewer-request-log-data",
  ]
  s3_delivery_configuration {
    enable_hive_compatible_path = true
    suffix_path                 = "/{DistributionId}/{yyyy}/{MM}/{dd}/{HH}"
  }
}
