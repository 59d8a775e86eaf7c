# The scheduled job: edgemeter on ECS Fargate, started hourly by EventBridge
# Scheduler, reading the queue of the log bucket's notifications (sqs.tf).
# Its config comes from SSM Parameter Store, its key secret from Secrets
# Manager; its role can only read the logs, consume that queue and
# read/write the lake.

locals {
  lake_url   = "s3://${aws_s3_bucket.lake.bucket}/${var.lake_prefix}/"
  log_source = "s3://${aws_s3_bucket.logs.bucket}/cloudfront/"
  # The queue of the log bucket's notifications (sqs.tf); the daily
  # reconciliation adds the listing of log_source.
  config = <<-EOT
    sources = ["sqs://${aws_sqs_queue.notifications.url}"]
    dead_letter_queue = "${aws_sqs_queue.notifications_dlq.url}"
    lake = "${local.lake_url}"
    key_from = ${jsonencode(var.key_params)}
    lookback = "48h"
    retain_days = ${var.lake_retain_days}
  EOT
}

resource "aws_ssm_parameter" "config" {
  name   = "/${var.name}/edgemeter.toml"
  type   = "SecureString"
  key_id = aws_kms_key.edgemeter.arn
  value  = local.config
  tags   = var.tags
}

resource "aws_secretsmanager_secret" "key_secret" {
  #checkov:skip=CKV2_AWS_57:Rotating the HMAC secret would change every api_key_id; it is rotated deliberately, not on a timer.
  name       = "${var.name}/key-secret"
  kms_key_id = aws_kms_key.edgemeter.arn
  tags       = var.tags
}

resource "aws_cloudwatch_log_group" "edgemeter" {
  name              = "/ecs/${var.name}"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.edgemeter.arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "edgemeter" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The task's own role: list/read logs, consume the notification queue (and
# send to its dead-letter queue), read/write the lake prefix, nothing else.
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ListLogs"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.logs.arn]
  }
  statement {
    sid       = "ReadLogs"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.logs.arn}/cloudfront/*"]
  }
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.lake_prefix}/*", "${var.lake_prefix}"]
    }
  }
  statement {
    sid       = "ReadWriteLake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.lake.arn}/${var.lake_prefix}/*"]
  }
  statement {
    sid = "ConsumeNotifications"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.notifications.arn]
  }
  statement {
    sid       = "DeadLetterNotifications"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.notifications_dlq.arn]
  }
  statement {
    sid       = "UseKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.edgemeter.arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "${var.name}-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# The execution role: pull the image, write logs, read the config and secret.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["ssm:GetParameters", "secretsmanager:GetSecretValue", "kms:Decrypt"]
    resources = [aws_ssm_parameter.config.arn, aws_secretsmanager_secret.key_secret.arn, aws_kms_key.edgemeter.arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "${var.name}-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_ecs_task_definition" "edgemeter" {
  family                   = var.name

  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 1024
  memory                   = 2048
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([
    {
      name                   = "edgemeter"
      image                  = var.image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      # The config file's text comes from SSM (EDGEMETER_CONFIG_TOML), the HMAC
      # secret from Secrets Manager: no file in the read-only image is needed.
      command = ["run", "--quiet"]
      secrets = [
        { name = "EDGEMETER_CONFIG_TOML", valueFrom = aws_ssm_parameter.config.arn },
        { name = "EDGEMETER_KEY_SECRET", valueFrom = aws_secretsmanager_secret.key_secret.arn },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.edgemeter.name
          awslogs-region        = data.aws_region.current.name
          awslogs-stream-prefix = "edgemeter"
        }
      }
    }
  ])
  tags = var.tags
}

resource "aws_security_group" "task" {
  #checkov:skip=CKV2_AWS_5:Attached to the Fargate task through the scheduler's network_configuration, which this check does not follow.
  name        = "${var.name}-task"
  description = "edgemeter task: outbound HTTPS to S3 and AWS APIs only"
  vpc_id      = var.vpc_id
  egress {
    description = "HTTPS to S3, SSM, Secrets Manager, ECR and CloudWatch"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = var.tags
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["ecs:RunTask"]
    resources = [aws_ecs_task_definition.edgemeter.arn_without_revision, "${aws_ecs_task_definition.edgemeter.arn_without_revision}:*"]
  }
  statement {
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task.arn, aws_iam_role.execution.arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

# The runs of the one task definition, on two schedules. Each hour,
# `ingest_workers` tasks consume the notification queue at once: SQS hands
# each message to one of them, so they share the work without shards; their
# commits to the same hours are merged and retried by the lake. Once a day,
# one more also lists the log prefix (`--reconcile`), for objects whose
# notifications never came: the config's lookback (48 h) back from the last
# listing.
locals {
  runs = {
    hourly = {
      expression = var.schedule_expression
      tasks      = var.ingest_workers
      command    = null
    }
    reconcile = {
      expression = var.reconcile_schedule_expression
      tasks      = 1
      command    = ["run", "--quiet", "--reconcile", local.log_source]
    }
  }
}

resource "aws_scheduler_schedule" "run" {
  for_each            = local.runs
  name                = "${var.name}-${each.key}"
  schedule_expression = each.value.expression
  kms_key_arn         = aws_kms_key.edgemeter.arn
  flexible_time_window {
    mode = "OFF"
  }
  target {
    arn      = aws_ecs_cluster.edgemeter.arn
    role_arn = aws_iam_role.scheduler.arn
    # RunTask overrides: the same task, with the listing to reconcile.
    input = each.value.command == null ? null : jsonencode({
      containerOverrides = [{
        name    = "edgemeter"
        command = each.value.command
      }]
    })
    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.edgemeter.arn
      task_count          = each.value.tasks
      launch_type         = "FARGATE"
      network_configuration {
        subnets          = var.subnet_ids
        security_groups  = [aws_security_group.task.id]
        assign_public_ip = false
      }
    }
    retry_policy {
      maximum_retry_attempts = 2
    }
  }
}

# The two schedules were two resources before; state moves, nothing is made again.
moved {
  from = aws_scheduler_schedule.hourly
  to   = aws_scheduler_schedule.run["hourly"]
}

moved {
  from = aws_scheduler_schedule.reconcile
  to   = aws_scheduler_schedule.run["reconcile"]
}
