//! Blacklisting of workers that keep failing tasks (Druid's RemoteTaskRunner, see docs/architecture.md).

/// Druid's rule: more than `max_retries` failures in a row, and the blacklist would stay within
/// `max_percentage` of the workers (`blacklisted <= workers * pct / 100 - 1`, so with the default
/// 20 % nobody is blacklisted in a cluster of fewer than five workers).
pub fn should_blacklist(
    failed_in_a_row: u32,
    max_retries: u32,
    already_blacklisted: usize,
    workers: usize,
    max_percentage: u32,
) -> bool {
    failed_in_a_row > max_retries
        && (already_blacklisted as f64) <= workers as f64 * (max_percentage as f64 / 100.0) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_druids_rule() {
        assert!(
            !should_blacklist(5, 5, 0, 5, 20),
            "needs more than max_retries"
        );
        assert!(should_blacklist(6, 5, 0, 5, 20));
        assert!(
            !should_blacklist(6, 5, 1, 5, 20),
            "20 % of 5 workers is one"
        );
        assert!(should_blacklist(6, 5, 1, 10, 20));
        assert!(
            !should_blacklist(100, 5, 0, 4, 20),
            "small clusters never blacklist at 20 %"
        );
        assert!(should_blacklist(2, 1, 0, 2, 100));
    }
}
