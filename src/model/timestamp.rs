//! The one timestamp format labelport stores and sends: RFC 3339, UTC, microseconds, `Z`.

use time::OffsetDateTime;
use time::macros::format_description;

/// Formats a moment as `2025-01-02T03:04:05.678901Z`, the form Label Studio's API returns.
pub fn format_timestamp(moment: OffsetDateTime) -> String {
    let utc = moment.to_offset(time::UtcOffset::UTC);
    utc.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .expect("a UTC timestamp always formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds_and_z() {
        let moment = time::macros::datetime!(2025-01-02 03:04:05.678901 UTC);
        assert_eq!(format_timestamp(moment), "2025-01-02T03:04:05.678901Z");
    }
}
