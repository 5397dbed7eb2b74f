//! Joda-style timestamps: ISO-8601 in UTC with milliseconds, as Druid's Jackson writes them.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn to_iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn now_iso() -> String {
    to_iso(Utc::now())
}

pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_joda() {
        let t = parse_iso("2023-06-22T22:11:37.012Z").unwrap();
        assert_eq!(to_iso(t), "2023-06-22T22:11:37.012Z");
        assert_eq!(
            to_iso(DateTime::<Utc>::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
