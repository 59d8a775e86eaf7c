# S3 event notifications of the log bucket on an SQS queue, which the job
# reads (`--source sqs://…`): each new log object is ingested by the next
# run, however its name dates it, and no run lists the bucket except the
# daily reconciliation. A message whose objects cannot be read goes to the
# dead-letter queue (edgemeter sends it there, `dead_letter_queue` in the
# config; the redrive policy catches a message that makes every run fail).

resource "aws_sqs_queue" "notifications_dlq" {
  name                              = "${var.name}-log-notifications-dlq"
  kms_master_key_id                 = aws_kms_key.edgemeter.arn
  kms_data_key_reuse_period_seconds = 300
  message_retention_seconds         = 1209600 # 14 days, SQS's longest
  tags                              = var.tags
}

resource "aws_sqs_queue" "notifications" {
  name                              = "${var.name}-log-notifications"
  kms_master_key_id                 = aws_kms_key.edgemeter.arn
  kms_data_key_reuse_period_seconds = 300
  message_retention_seconds         = 1209600
  receive_wait_time_seconds         = 20
  # How soon a message held by a run that stopped comes back; edgemeter
  # extends it while the message's objects are read.
  visibility_timeout_seconds = var.notification_visibility_timeout
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.notifications_dlq.arn
    maxReceiveCount     = var.notification_max_receives
  })
  tags = var.tags
}

# Only the notification queue may move messages into the dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "notifications_dlq" {
  queue_url = aws_sqs_queue.notifications_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.notifications.arn]
  })
}

# S3 may send to the queue only for the log bucket, of this account.
data "aws_iam_policy_document" "notifications_queue" {
  statement {
    sid       = "LogBucketNotifications"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.notifications.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.logs.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.notifications.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "notifications" {
  queue_url = aws_sqs_queue.notifications.id
  policy    = data.aws_iam_policy_document.notifications_queue.json
}

data "aws_iam_policy_document" "notifications_dlq" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.notifications_dlq.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "notifications_dlq" {
  queue_url = aws_sqs_queue.notifications_dlq.id
  policy    = data.aws_iam_policy_document.notifications_dlq.json
}

# Every object CloudFront writes under the log prefix. S3 sends a test
# event when this is saved; edgemeter deletes it.
resource "aws_s3_bucket_notification" "logs" {
  bucket = aws_s3_bucket.logs.id
  queue {
    id            = "${var.name}-new-logs"
    queue_arn     = aws_sqs_queue.notifications.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "cloudfront/"
  }
  # S3 checks that it may send before it saves the configuration.
  depends_on = [aws_sqs_queue_policy.notifications]
}
