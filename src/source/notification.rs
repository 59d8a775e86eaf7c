//! S3 event notifications as SQS delivers them: which objects a message
//! names. Three shapes arrive: S3's own event JSON (`Records[].s3`), the
//! same wrapped by SNS (`{"Type":"Notification","Message":"<json>"}`), and
//! EventBridge's (`{"detail-type":"Object Created","source":"aws.s3",…}`).
//!
//! Only `ObjectCreated` events name objects to read; S3's `s3:TestEvent`
//! and every other event are [`Notice::Ignored`]. A body that is none of
//! these is an error with the reason, for the caller to report with the
//! message's id. Nothing here reads S3 or the queue.

use serde_json::Value;

/// One object a notification names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotifiedObject {
    pub(crate) bucket: String,
    /// The key as stored (decoded from the notification's URL encoding).
    pub(crate) key: String,
    /// Size and ETag as the event gives them (an event of an old schema may
    /// lack them: then the object is looked up before it is read).
    pub(crate) size: Option<u64>,
    pub(crate) etag: Option<String>,
}

impl NotifiedObject {
    /// The object's location, as listings give it.
    pub(crate) fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// What one message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    /// Objects created (one or more; a message may repeat one).
    Created(Vec<NotifiedObject>),
    /// Nothing to read: a test event or another kind of event, named.
    Ignored(String),
}

/// Reads a message body. `Err` says why it is not an S3 notification.
pub(crate) fn parse(body: &str) -> Result<Notice, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    parse_value(&value, 0)
}

/// How deep envelopes may nest (SNS around EventBridge, say).
const MAX_ENVELOPES: usize = 2;

fn parse_value(value: &Value, depth: usize) -> Result<Notice, String> {
    let Some(map) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    // SNS: the notification is the `Message` string.
    if map.get("Type").and_then(Value::as_str) == Some("Notification") {
        if depth >= MAX_ENVELOPES {
            return Err("SNS envelopes nested too deep".into());
        }
        let Some(inner) = map.get("Message").and_then(Value::as_str) else {
            return Err("an SNS notification without a Message string".into());
        };
        let inner: Value =
            serde_json::from_str(inner).map_err(|e| format!("the SNS Message is not JSON: {e}"))?;
        return parse_value(&inner, depth + 1);
    }
    // S3's test event when a notification configuration is saved.
    if let Some(event) = map.get("Event").and_then(Value::as_str) {
        return Ok(Notice::Ignored(event.to_string()));
    }
    if let Some(records) = map.get("Records") {
        return s3_records(records);
    }
    if map.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return eventbridge(map);
    }
    Err("neither an S3 event (Records), an SNS notification nor an EventBridge S3 event".into())
}

/// S3's own event: every `ObjectCreated:*` record names an object.
fn s3_records(records: &Value) -> Result<Notice, String> {
    let Some(records) = records.as_array() else {
        return Err("Records is not an array".into());
    };
    let mut objects = Vec::new();
    let mut ignored = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let name = record
            .get("eventName")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("Records[{i}] has no eventName"))?;
        // S3 writes `ObjectCreated:Put`; some tools write `s3:ObjectCreated:Put`.
        let bare = name.strip_prefix("s3:").unwrap_or(name);
        if !bare.starts_with("ObjectCreated:") {
            ignored.push(name.to_string());
            continue;
        }
        let s3 = record
            .get("s3")
            .ok_or_else(|| format!("Records[{i}] ({name}) has no s3"))?;
        let field =
            |path: &[&str]| -> Option<&Value> { path.iter().try_fold(s3, |v, k| v.get(*k)) };
        let bucket = field(&["bucket", "name"])
            .and_then(Value::as_str)
            .ok_or_else(|| format!("Records[{i}] has no s3.bucket.name"))?;
        let key = field(&["object", "key"])
            .and_then(Value::as_str)
            .ok_or_else(|| format!("Records[{i}] has no s3.object.key"))?;
        objects.push(object(
            bucket,
            key,
            field(&["object", "size"]),
            field(&["object", "eTag"]),
        )?);
    }
    match (objects.is_empty(), records.is_empty()) {
        (false, _) => Ok(Notice::Created(objects)),
        (true, true) => Err("Records is empty".into()),
        (true, false) => Ok(Notice::Ignored(ignored.join(", "))),
    }
}

/// EventBridge's S3 event: `Object Created` names one object.
fn eventbridge(map: &serde_json::Map<String, Value>) -> Result<Notice, String> {
    let kind = map
        .get("detail-type")
        .and_then(Value::as_str)
        .ok_or("an aws.s3 event without detail-type")?;
    if kind != "Object Created" {
        return Ok(Notice::Ignored(kind.to_string()));
    }
    let detail = map.get("detail").ok_or("Object Created without detail")?;
    let field =
        |path: &[&str]| -> Option<&Value> { path.iter().try_fold(detail, |v, k| v.get(*k)) };
    let bucket = field(&["bucket", "name"])
        .and_then(Value::as_str)
        .ok_or("Object Created without detail.bucket.name")?;
    let key = field(&["object", "key"])
        .and_then(Value::as_str)
        .ok_or("Object Created without detail.object.key")?;
    Ok(Notice::Created(vec![object(
        bucket,
        key,
        field(&["object", "size"]),
        field(&["object", "etag"]),
    )?]))
}

fn object(
    bucket: &str,
    key: &str,
    size: Option<&Value>,
    etag: Option<&Value>,
) -> Result<NotifiedObject, String> {
    if bucket.is_empty() || key.is_empty() {
        return Err("an empty bucket or key".into());
    }
    let size = match size {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or("size is not a whole number")?),
        Some(Value::String(s)) => Some(s.parse().map_err(|_| "size is not a number")?),
        Some(_) => return Err("size is not a number".into()),
    };
    let etag = etag
        .and_then(Value::as_str)
        .map(|e| e.trim_matches('"').to_string())
        .filter(|e| !e.is_empty());
    Ok(NotifiedObject {
        bucket: bucket.to_string(),
        key: decode_key(key)?,
        size,
        etag,
    })
}

/// A key as notifications give it, URL-encoded as a form value: `+` is a
/// space, `%2B` a plus. EventBridge's keys are read the same way.
fn decode_key(key: &str) -> Result<String, String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| "the key is not UTF-8 once decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1",
        "eventTime":"2025-10-05T13:05:01.123Z","eventName":"ObjectCreated:Put",
        "s3":{"s3SchemaVersion":"1.0","configurationId":"edgemeter",
        "bucket":{"name":"my-log-bucket","arn":"arn:aws:s3:::my-log-bucket"},
        "object":{"key":"cf/E2ABC.2025-10-05-13.a1b2c3d4.gz","size":4512,"eTag":"0f343b0931126a20f133d67c2b018a3b","sequencer":"0055AED6DCD90281E5"}}}]}"#;

    fn created(notice: Notice) -> Vec<NotifiedObject> {
        match notice {
            Notice::Created(objects) => objects,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_direct_s3_event_names_its_object() {
        let objects = created(parse(DIRECT).unwrap());
        assert_eq!(
            objects,
            vec![NotifiedObject {
                bucket: "my-log-bucket".into(),
                key: "cf/E2ABC.2025-10-05-13.a1b2c3d4.gz".into(),
                size: Some(4512),
                etag: Some("0f343b0931126a20f133d67c2b018a3b".into()),
            }]
        );
        assert_eq!(
            objects[0].uri(),
            "s3://my-log-bucket/cf/E2ABC.2025-10-05-13.a1b2c3d4.gz"
        );
    }

    #[test]
    fn keys_are_url_decoded_with_plus_for_space() {
        let body = DIRECT.replace(
            "cf/E2ABC.2025-10-05-13.a1b2c3d4.gz",
            "cf/my+logs/a%2Bb%3D%C3%A9.gz",
        );
        assert_eq!(created(parse(&body).unwrap())[0].key, "cf/my logs/a+b=é.gz");
        let bad = DIRECT.replace("cf/E2ABC.2025-10-05-13.a1b2c3d4.gz", "cf/%FF.gz");
        assert_eq!(
            parse(&bad).unwrap_err(),
            "the key is not UTF-8 once decoded"
        );
    }

    #[test]
    fn an_sns_envelope_is_opened() {
        let wrapped = serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:logs",
            "Subject": "Amazon S3 Notification",
            "Message": DIRECT,
        })
        .to_string();
        assert_eq!(parse(&wrapped).unwrap(), parse(DIRECT).unwrap());
        let empty = r#"{"Type":"Notification","Message":"{}"}"#;
        assert!(parse(empty).is_err());
    }

    #[test]
    fn an_eventbridge_object_created_event_names_its_object() {
        let body = r#"{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"Object Created",
            "source":"aws.s3","account":"123456789012","time":"2025-10-05T13:05:01Z","region":"eu-west-1",
            "resources":["arn:aws:s3:::my-log-bucket"],
            "detail":{"version":"0","bucket":{"name":"my-log-bucket"},
            "object":{"key":"cf/E2ABC.2025-10-05-13.a1b2c3d4.gz","size":4512,"etag":"0f343b0931126a20f133d67c2b018a3b","sequencer":"00617F08299329D189"},
            "request-id":"N4N7GDK58NMKJ12R","requester":"123456789012","reason":"PutObject"}}"#;
        assert_eq!(parse(body).unwrap(), parse(DIRECT).unwrap());
        let deleted = body.replace("Object Created", "Object Deleted");
        assert_eq!(
            parse(&deleted).unwrap(),
            Notice::Ignored("Object Deleted".into())
        );
    }

    #[test]
    fn test_events_and_other_events_are_ignored() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-10-05T13:00:00.000Z",
            "Bucket":"my-log-bucket","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YYGhwOFDQw=="}"#;
        assert_eq!(parse(test).unwrap(), Notice::Ignored("s3:TestEvent".into()));
        let removed = DIRECT.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(
            parse(&removed).unwrap(),
            Notice::Ignored("ObjectRemoved:Delete".into())
        );
    }

    #[test]
    fn a_message_of_several_records_names_each_created_object() {
        let value: Value = serde_json::from_str(DIRECT).unwrap();
        let record = value["Records"][0].clone();
        let mut second = record.clone();
        second["s3"]["object"]["key"] = "cf/E2ABC.2025-10-05-14.ffff.gz".into();
        second["eventName"] = "ObjectCreated:CompleteMultipartUpload".into();
        let mut removed = record.clone();
        removed["eventName"] = "ObjectRemoved:Delete".into();
        let body = serde_json::json!({"Records": [record, removed, second]}).to_string();
        let keys: Vec<String> = created(parse(&body).unwrap())
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(
            keys,
            vec![
                "cf/E2ABC.2025-10-05-13.a1b2c3d4.gz",
                "cf/E2ABC.2025-10-05-14.ffff.gz"
            ]
        );
    }

    #[test]
    fn malformed_bodies_say_why() {
        assert!(parse("hello").unwrap_err().starts_with("not JSON"));
        assert_eq!(parse("[1]").unwrap_err(), "not a JSON object");
        assert_eq!(parse(r#"{"Records":[]}"#).unwrap_err(), "Records is empty");
        assert_eq!(
            parse(
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"}}}]}"#
            )
            .unwrap_err(),
            "Records[0] has no s3.object.key"
        );
        assert!(
            parse(r#"{"hello":"world"}"#)
                .unwrap_err()
                .starts_with("neither")
        );
        let size = DIRECT.replace("4512", "-1");
        assert_eq!(parse(&size).unwrap_err(), "size is not a whole number");
    }
}
