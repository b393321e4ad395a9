//! The data directory's volume: its size and the bytes still usable there, from statvfs
//! (through rustix's safe wrapper), for DescribeLogDirs v4 and the metrics.

use std::path::Path;

/// Bytes on the volume holding `dir`: (capacity, usable by this process), or `None` when the
/// volume cannot be asked.
pub fn space(dir: &Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(dir).ok()?;
    let block = s.f_frsize.max(1);
    Some((
        s.f_blocks.saturating_mul(block),
        s.f_bavail.saturating_mul(block),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_directorys_volume_has_a_capacity_and_no_more_usable_bytes_than_that() {
        let dir = tempfile::tempdir().unwrap();
        let (capacity, usable) = super::space(dir.path()).expect("statvfs answers");
        assert!(capacity > 0 && usable <= capacity, "{capacity} {usable}");
        assert_eq!(super::space(&dir.path().join("missing")), None);
    }
}
