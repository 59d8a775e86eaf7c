//! The header of tab-separated lines: a `#Fields:` line (or the field names
//! of a JSON or Parquet record, or the configured real-time fields) mapped to
//! the slot each position of a line goes to, and the fewest fields a line
//! needs to be a request. A header the parser cannot use (RTMP's, one without
//! a time or `sc-status`) makes the object unsupported.

use super::ObjectError;
use super::fields::idx;
use crate::schema::fields::field_index;

/// Where each position of a line goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Date,
    Time,
    /// `timestamp`: epoch seconds with a fraction (real-time, v2).
    EpochSeconds,
    /// `timestamp(ms)`: epoch milliseconds (v2).
    EpochMillis,
    Field(usize),
    Ignored,
}

/// The slots of a line's positions, from its header.
#[derive(Debug)]
pub(super) struct Header {
    pub(super) slots: Vec<Slot>,
    /// Fewest fields a line needs: up to the last of the time fields and sc-status.
    pub(super) min_fields: usize,
}

impl Header {
    /// A `#Fields:` line.
    pub(super) fn parse(line: &str) -> Result<Self, ObjectError> {
        let names: Vec<&str> = line["#Fields:".len()..].split_ascii_whitespace().collect();
        Self::from_names(&names)
    }

    /// A header from field names (W3C spellings or their snake_case forms).
    pub(super) fn from_names(names: &[&str]) -> Result<Self, ObjectError> {
        if names.contains(&"x-event") || names.contains(&"x-sname") {
            return Err(ObjectError::Unsupported(
                "RTMP streaming distribution log (retired by CloudFront in 2020)".into(),
            ));
        }
        let slots: Vec<Slot> = names
            .iter()
            .map(|name| match *name {
                "date" => Slot::Date,
                "time" => Slot::Time,
                "timestamp" => Slot::EpochSeconds,
                "timestamp(ms)" | "timestamp_ms" => Slot::EpochMillis,
                other => field_index(other).map_or(Slot::Ignored, Slot::Field),
            })
            .collect();
        let position = |wanted: fn(&Slot) -> bool| slots.iter().position(wanted);
        let time_end = match (
            position(|s| matches!(s, Slot::Date)),
            position(|s| matches!(s, Slot::Time)),
            position(|s| matches!(s, Slot::EpochSeconds | Slot::EpochMillis)),
        ) {
            (_, _, Some(epoch)) => Some(epoch),
            (Some(date), Some(time), None) => Some(date.max(time)),
            _ => None,
        };
        let status = position(|s| matches!(s, Slot::Field(i) if *i == idx::SC_STATUS));
        let (Some(time_end), Some(status)) = (time_end, status) else {
            return Err(ObjectError::Unsupported(format!(
                "the header's {} fields lack a time (date and time, or timestamp) or sc-status",
                names.len()
            )));
        };
        Ok(Self {
            min_fields: time_end.max(status) + 1,
            slots,
        })
    }
}
