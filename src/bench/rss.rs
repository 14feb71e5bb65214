//! The process's peak resident set size, per measured run: reset before a
//! run (`/proc/self/clear_refs`, Linux), read after (`VmHWM`). Elsewhere
//! unknown.

/// Starts a new peak: later reads report the peak from now on.
pub fn reset_peak() {
    #[cfg(target_os = "linux")]
    {
        // "5" resets the peak RSS counter (proc(5)); a kernel without it
        // leaves the process-lifetime peak, which only overstates.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
}

/// The peak resident set size since the last [`reset_peak`], in bytes.
pub fn peak_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_hwm(&status)
}

fn parse_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_proc_status() {
        assert_eq!(
            parse_hwm("Name:\tx\nVmHWM:\t   51200 kB\nVmRSS: 1 kB\n"),
            Some(50 << 20)
        );
        assert_eq!(parse_hwm("VmRSS: 1 kB\n"), None);
        #[cfg(target_os = "linux")]
        {
            reset_peak();
            assert!(peak_bytes().is_some_and(|b| b > 0));
        }
    }
}
