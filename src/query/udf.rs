//! SQL functions edgemeter adds to DataFusion:
//!
//! * `endpoint_template(cs_uri_stem)` folds ids out of paths, so analytics group
//!   by route: `/v1/users/123` → `/v1/users/{id}` (numeric segments, UUIDs, and
//!   long hex or base62 tokens).
//! * `window_start(timestamp, unit, tz)` is the start of the hour, day or month
//!   containing `timestamp` in the IANA zone `tz`, as RFC 3339 with that zone's
//!   offset (DST-correct: a local day can be 23 or 25 hours long).

use crate::schema::endpoint::endpoint_template;
use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, StringArray, StringBuilder,
    StringViewArray,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, TimestampMillisecondType};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility, create_udf,
};
use datafusion::prelude::SessionContext;
use regex::Regex;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Registers edgemeter's functions in a session.
pub(crate) fn register(ctx: &SessionContext) {
    for function in all() {
        ctx.register_udf(function);
    }
}

/// Every function edgemeter adds (a Ballista scheduler and its executors
/// register them too, to decode the plans that call them).
pub(crate) fn all() -> Vec<ScalarUDF> {
    vec![
        endpoint_template_udf(),
        window_start_udf(),
        regex_match_udf(),
    ]
}

/// `regex_match(text, pattern)`: whether the regular expression matches
/// anywhere in the text, as `regexp_like` decides, with each pattern compiled
/// once per session. `regexp_like` compiles its pattern again for every batch
/// of rows, and a meter's endpoint globs over a month of the rollup spent
/// more time building the same automata than matching. The text may be a
/// string view (the rollups are read as views) or a plain string, so that
/// neither is copied into the other's layout first.
fn regex_match_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(RegexMatch {
        signature: Signature::one_of(
            [DataType::Utf8View, DataType::Utf8, DataType::LargeUtf8]
                .into_iter()
                .map(|text| TypeSignature::Exact(vec![text, DataType::Utf8]))
                .collect(),
            Volatility::Immutable,
        ),
        compiled: Compiled::default(),
    })
}

/// See [`regex_match_udf`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexMatch {
    signature: Signature,
    compiled: Compiled,
}

/// The session's compiled patterns: a cache, so no part of what the
/// function is (two instances are equal whatever they hold).
#[derive(Debug, Default)]
struct Compiled(Mutex<HashMap<String, Regex>>);

impl PartialEq for Compiled {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Compiled {}

impl std::hash::Hash for Compiled {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl Compiled {
    fn get(&self, pattern: &str) -> datafusion::common::Result<Regex> {
        let mut compiled = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(regex) = compiled.get(pattern) {
            return Ok(regex.clone());
        }
        let regex = match Regex::new(pattern) {
            Ok(regex) => regex,
            Err(e) => return exec_err!("regex_match: {e}"),
        };
        compiled.insert(pattern.to_string(), regex.clone());
        Ok(regex)
    }
}

impl ScalarUDFImpl for RegexMatch {
    fn name(&self) -> &str {
        "regex_match"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let [text, pattern] = args.args.as_slice() else {
            return exec_err!("regex_match(text, 'pattern') takes two arguments");
        };
        let ColumnarValue::Scalar(
            ScalarValue::Utf8(Some(pattern))
            | ScalarValue::Utf8View(Some(pattern))
            | ScalarValue::LargeUtf8(Some(pattern)),
        ) = pattern
        else {
            return exec_err!("regex_match(text, 'pattern'): the pattern is one text");
        };
        let regex = self.compiled.get(pattern)?;
        let array = text.to_array(1)?;
        let out = match array.data_type() {
            DataType::Utf8View => matches_in_views(array.as_string_view(), &regex),
            DataType::LargeUtf8 => matches_in_runs(array.as_string::<i64>().iter(), &regex),
            _ => matches_in_runs(array.as_string::<i32>().iter(), &regex),
        };
        Ok(match text {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(out)),
        })
    }
}

/// Matches each text. The rollup's rows come sorted by their groups, the
/// endpoint second to last: runs of one text are common, matched once.
fn matches_in_runs<'a>(
    texts: impl Iterator<Item = Option<&'a str>>,
    regex: &Regex,
) -> BooleanArray {
    let mut out = BooleanBuilder::new();
    let mut last: Option<(&str, bool)> = None;
    for s in texts {
        let Some(s) = s else {
            out.append_null();
            continue;
        };
        let matched = match last {
            Some((previous, matched)) if previous == s => matched,
            _ => regex.is_match(s),
        };
        last = Some((s, matched));
        out.append_value(matched);
    }
    out.finish()
}

/// [`matches_in_runs`] over string views, each distinct view matched once
/// per batch (a few at a time: a cache of [`VIEW_SLOTS`] slots, by the view's
/// bits). Equal views hold equal texts: a short text is held whole in its
/// view, and a longer one is the same bytes of the same buffer, as each value
/// of a Parquet dictionary is read. A batch of rollup rows holds a few
/// endpoint templates, in runs of a few rows.
fn matches_in_views(texts: &StringViewArray, regex: &Regex) -> BooleanArray {
    let views = texts.views();
    let mut slots: [Option<(u128, bool)>; VIEW_SLOTS] = [None; VIEW_SLOTS];
    let values = BooleanBuffer::collect_bool(texts.len(), |i| {
        if texts.is_null(i) {
            return false;
        }
        let view = views[i];
        let folded = (view as u64) ^ ((view >> 64) as u64);
        let slot = (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % VIEW_SLOTS;
        match slots[slot] {
            Some((seen, matched)) if seen == view => matched,
            _ => {
                let matched = regex.is_match(texts.value(i));
                slots[slot] = Some((view, matched));
                matched
            }
        }
    });
    BooleanArray::new(values, texts.nulls().cloned())
}

/// Slots of [`matches_in_views`]'s cache.
const VIEW_SLOTS: usize = 16;

fn endpoint_template_udf() -> ScalarUDF {
    create_udf(
        "endpoint_template",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let [arg] = args else {
                return exec_err!("endpoint_template takes one argument");
            };
            match arg {
                ColumnarValue::Array(array) => {
                    let stems = array.as_string::<i32>();
                    let out: StringArray = stems.iter().map(|s| s.map(endpoint_template)).collect();
                    Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
                }
                ColumnarValue::Scalar(ScalarValue::Utf8(s)) => Ok(ColumnarValue::Scalar(
                    ScalarValue::Utf8(s.as_deref().map(endpoint_template)),
                )),
                other => exec_err!("endpoint_template: unexpected argument {other:?}"),
            }
        }),
    )
}

/// The start of the window containing `t` in `zone`.
pub(crate) fn window_start(t: DateTime<Utc>, unit: &str, zone: chrono_tz::Tz) -> Option<String> {
    let local = t.with_timezone(&zone);
    if unit == "hour" {
        // Back to the start of the local hour with the offset in force: the
        // hour that fall back repeats is two windows, one per offset.
        let into = chrono::Duration::minutes(i64::from(local.minute()))
            + chrono::Duration::seconds(i64::from(local.second()))
            + chrono::Duration::nanoseconds(i64::from(local.nanosecond()));
        let start = (t - into).with_timezone(&zone);
        return Some(start.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
    }
    let naive = match unit {
        "day" => local.date_naive().and_hms_opt(0, 0, 0)?,
        "month" => local.date_naive().with_day(1)?.and_hms_opt(0, 0, 0)?,
        _ => return None,
    };
    let start = zone.from_local_datetime(&naive).earliest().or_else(|| {
        zone.from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()
    })?;
    Some(start.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}

fn window_start_udf() -> ScalarUDF {
    create_udf(
        "window_start",
        vec![
            DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Millisecond,
                Some("UTC".into()),
            ),
            DataType::Utf8,
            DataType::Utf8,
        ],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let [
                ts,
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(unit))),
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(tz))),
            ] = args
            else {
                return exec_err!("window_start(timestamp, 'hour'|'day'|'month', 'Area/City')");
            };
            if !["hour", "day", "month"].contains(&unit.as_str()) {
                return exec_err!("window_start: unit must be hour, day or month, not {unit:?}");
            }
            let Ok(zone) = tz.parse::<chrono_tz::Tz>() else {
                return exec_err!("window_start: {tz:?} is not an IANA time zone");
            };
            let array = ts.to_array(1)?;
            let times = array.as_primitive::<TimestampMillisecondType>();
            // Rows of the rollup come an hour at a time, all at the hour's
            // start: a run of equal times is one window, worked out once.
            let mut out = StringBuilder::with_capacity(times.len(), times.len() * 25);
            let mut last: Option<(i64, Option<String>)> = None;
            for i in 0..times.len() {
                if !times.is_valid(i) {
                    out.append_null();
                    continue;
                }
                let ms = times.value(i);
                if last.as_ref().is_none_or(|(at, _)| *at != ms) {
                    let window = DateTime::from_timestamp_millis(ms)
                        .and_then(|t| window_start(t, unit, zone));
                    last = Some((ms, window));
                }
                match last.as_ref().and_then(|(_, window)| window.as_deref()) {
                    Some(window) => out.append_value(window),
                    None => out.append_null(),
                }
            }
            let out = out.finish();
            Ok(match ts {
                ColumnarValue::Scalar(_) => {
                    ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
                }
                ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(out)),
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fold_into_templates() {
        assert_eq!(endpoint_template("/v1/users/123"), "/v1/users/{id}");
        assert_eq!(
            endpoint_template("/v1/reports/8f14e45f-ceea-467f-a0e6-1b1f2c3d4e5f/pdf"),
            "/v1/reports/{id}/pdf"
        );
        assert_eq!(
            endpoint_template("/v1/blobs/0123456789abcdef0123"),
            "/v1/blobs/{id}"
        );
        assert_eq!(
            endpoint_template("/v1/tok/aZ3kQ9pL2mX8vB7nC4dE"),
            "/v1/tok/{id}"
        );
        assert_eq!(endpoint_template("/v2/search"), "/v2/search");
        assert_eq!(
            endpoint_template("/v1/users/me/settings"),
            "/v1/users/me/settings"
        );
        assert_eq!(endpoint_template("/"), "/");
    }

    /// `regex_match` decides as the regex does, row by row (runs of one text
    /// included), nulls staying null, for each pattern it is given (compiled
    /// once, then reused); a
    /// pattern that is not a regex is an error.
    #[test]
    fn regex_match_matches_each_row_with_each_pattern() {
        let udf = regex_match_udf();
        let texts: StringArray = [
            "/v1/search",
            "/v1/search",
            "",
            "/v1/users/{id}",
            "/v1/searches",
            "/v1/searches",
            "/v1/users/{id}/orders",
            "/v1/users/{id}/orders",
        ]
        .into_iter()
        .map(|t| (!t.is_empty()).then_some(t))
        .collect();
        // The same texts as plain strings, large strings and string views
        // (each long text of the views in a buffer of its own).
        let layouts: [ArrayRef; 3] = [
            Arc::new(texts.clone()),
            Arc::new(
                texts
                    .iter()
                    .collect::<datafusion::arrow::array::LargeStringArray>(),
            ),
            Arc::new(texts.iter().collect::<StringViewArray>()),
        ];
        let call = |texts: &ArrayRef, pattern: &str| {
            let args = datafusion::logical_expr::ScalarFunctionArgs {
                args: vec![
                    ColumnarValue::Array(texts.clone()),
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some(pattern.into()))),
                ],
                arg_fields: vec![],
                number_rows: texts.len(),
                return_field: Arc::new(datafusion::arrow::datatypes::Field::new(
                    "m",
                    DataType::Boolean,
                    true,
                )),
                config_options: Arc::new(Default::default()),
            };
            match udf.invoke_with_args(args) {
                Ok(ColumnarValue::Array(out)) => Ok(out.as_boolean().iter().collect::<Vec<_>>()),
                Ok(_) => panic!("an array in, an array out"),
                Err(e) => Err(e.to_string()),
            }
        };
        let (t, f) = (Some(true), Some(false));
        for texts in &layouts {
            for _ in 0..2 {
                let call = |pattern| call(texts, pattern);
                assert_eq!(call("^/v1/search$"), Ok(vec![t, t, None, f, f, f, f, f]));
                assert_eq!(
                    call("^/v1/search[^/]*$"),
                    Ok(vec![t, t, None, f, t, t, f, f])
                );
                assert_eq!(call("users"), Ok(vec![f, f, None, t, f, f, t, t]));
            }
            assert!(call(texts, "^/v1/(").unwrap_err().contains("regex_match"));
        }
    }

    /// Over string views of repeated texts (long ones deduplicated into
    /// shared bytes, so equal views recur apart, more texts than the cache
    /// has slots), each row gets what the regex says of its own text.
    #[test]
    fn regex_match_over_views_of_repeated_texts_matches_row_by_row() {
        let texts: Vec<String> = (0..20)
            .map(|i| match i % 3 {
                0 => format!("/v{i}"),
                1 => format!("/v1/search/{i}/long/enough/to/leave/the/view"),
                _ => format!("/v1/searches{i}"),
            })
            .collect();
        let mut builder =
            datafusion::arrow::array::StringViewBuilder::new().with_deduplicate_strings();
        let mut expected = Vec::new();
        let regex = Regex::new("^/v1/search[^/]*$").unwrap();
        for row in 0..1000usize {
            let pick = (row * 7919 + row / 13) % 21;
            match texts.get(pick) {
                Some(text) => {
                    builder.append_value(text);
                    expected.push(Some(regex.is_match(text)));
                }
                None => {
                    builder.append_null();
                    expected.push(None);
                }
            }
        }
        let views = builder.finish();
        let got: Vec<Option<bool>> = matches_in_views(&views, &regex).iter().collect();
        assert_eq!(got, expected);
        assert!(expected.contains(&Some(true)) && expected.contains(&None));
    }

    /// The function over a column gives each row its own window, runs of
    /// equal times (worked out once) and nulls included.
    #[test]
    fn a_column_of_times_gets_each_rows_window() {
        use datafusion::arrow::array::TimestampMillisecondArray;
        let ms = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        let (a, b) = (ms("2025-10-26T00:00:00Z"), ms("2025-10-26T01:00:00Z"));
        let times = TimestampMillisecondArray::from(vec![
            Some(a),
            Some(a),
            None,
            Some(b),
            Some(b),
            Some(a),
        ])
        .with_timezone("UTC");
        let text = |s: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(s.into())));
        let args = datafusion::logical_expr::ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Array(Arc::new(times)),
                text("hour"),
                text("Europe/Berlin"),
            ],
            arg_fields: vec![],
            number_rows: 6,
            return_field: Arc::new(datafusion::arrow::datatypes::Field::new(
                "w",
                DataType::Utf8,
                true,
            )),
            config_options: Arc::new(Default::default()),
        };
        let ColumnarValue::Array(out) = window_start_udf().invoke_with_args(args).unwrap() else {
            panic!("an array in, an array out");
        };
        let out: Vec<Option<&str>> = out.as_string::<i32>().iter().collect();
        // 00:00Z and 01:00Z on the night Berlin falls back: 02:00 twice.
        let (first, second) = (
            Some("2025-10-26T02:00:00+02:00"),
            Some("2025-10-26T02:00:00+01:00"),
        );
        assert_eq!(out, [first, first, None, second, second, first]);
    }

    #[test]
    fn windows_follow_the_zone_across_dst() {
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 22:30Z on Mar 30 2025 is 00:30 CEST on Mar 31.
        assert_eq!(
            window_start(t("2025-03-30T22:30:00Z"), "day", berlin).unwrap(),
            "2025-03-31T00:00:00+02:00"
        );
        // 21:30Z on Mar 30 is 23:30 CEST on Mar 30, a day that began at +01:00.
        assert_eq!(
            window_start(t("2025-03-30T21:30:00Z"), "day", berlin).unwrap(),
            "2025-03-30T00:00:00+01:00"
        );
        assert_eq!(
            window_start(t("2025-03-30T01:30:00Z"), "hour", berlin).unwrap(),
            "2025-03-30T03:00:00+02:00"
        );
        // Fall back: 02:00-03:00 happens twice, at +02:00 and then at +01:00.
        assert_eq!(
            window_start(t("2025-10-26T00:30:00Z"), "hour", berlin).unwrap(),
            "2025-10-26T02:00:00+02:00"
        );
        assert_eq!(
            window_start(t("2025-10-26T01:30:00Z"), "hour", berlin).unwrap(),
            "2025-10-26T02:00:00+01:00"
        );
        let hours_of_day = |day: &str| {
            let start = t(&format!("{day}T00:00:00Z")) - chrono::Duration::hours(3);
            (0..30 * 4)
                .map(|q| start + chrono::Duration::minutes(15 * q))
                .filter(|at| window_start(*at, "day", berlin).unwrap().starts_with(day))
                .map(|at| window_start(at, "hour", berlin).unwrap())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        // Every local hour is its own window: 23 in spring, 25 in autumn.
        assert_eq!(hours_of_day("2025-03-30"), 23);
        assert_eq!(hours_of_day("2025-10-26"), 25);
        assert_eq!(hours_of_day("2025-10-27"), 24);
        let kolkata: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(
            window_start(t("2025-10-26T04:45:00Z"), "hour", kolkata).unwrap(),
            "2025-10-26T10:00:00+05:30"
        );
        assert_eq!(
            window_start(t("2025-10-31T23:30:00Z"), "month", berlin).unwrap(),
            "2025-11-01T00:00:00+01:00"
        );
        assert_eq!(
            window_start(t("2025-10-31T23:30:00Z"), "month", chrono_tz::UTC).unwrap(),
            "2025-10-01T00:00:00+00:00"
        );
    }
}
