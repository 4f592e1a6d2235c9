//! Shared helpers of gort's examples, benchmarks and integration tests: what the process costs,
//! read from `/proc/self`.

/// The resident set size of this process in bytes (`VmRSS`).
///
/// # Examples
///
/// ```
/// assert!(gort_suite::rss_bytes() > 0);
/// ```
pub fn rss_bytes() -> usize {
    status_kib("VmRSS:") * 1024
}

/// The page-table memory of this process in bytes (`VmPTE`).
///
/// # Examples
///
/// ```
/// assert!(gort_suite::page_table_bytes() > 0);
/// ```
pub fn page_table_bytes() -> usize {
    status_kib("VmPTE:") * 1024
}

/// The number of memory mappings of this process (lines of `/proc/self/maps`).
///
/// # Examples
///
/// ```
/// assert!(gort_suite::mapping_count() > 0);
/// ```
pub fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |maps| maps.lines().count())
}

fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
