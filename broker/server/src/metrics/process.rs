//! The process metrics every Prometheus client exports on Linux (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, ...), read from `/proc/self` at scrape time. The
//! `prometheus` crate's own collector counts CPU in whole seconds, which makes a `rate` over a
//! dashboard's window useless; this one keeps the kernel's clock-tick resolution.

use std::sync::Mutex;

use krait_sync::MutexExt;
use prometheus::{Counter, Gauge, IntGauge, Registry};

use super::registered;

#[derive(Debug)]
pub(super) struct Process {
    cpu: Counter,
    /// The CPU seconds already added to `cpu`.
    counted: Mutex<f64>,
    resident: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    threads: IntGauge,
    start_time: Gauge,
}

/// What `/proc/self/stat` says, in base units.
#[derive(Debug, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    threads: i64,
    start_after_boot_seconds: f64,
    virtual_bytes: i64,
    resident_bytes: i64,
}

/// Parses `/proc/self/stat`: the fields after the command name, which may itself hold spaces
/// and parentheses, so they are counted from its last `)`.
fn parse_stat(text: &str, ticks: f64, page: i64) -> Option<Stat> {
    let fields: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // Field n of proc(5) is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<i64>().ok();
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        threads: field(20)?,
        start_after_boot_seconds: field(22)? as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page,
    })
}

/// The soft "Max open files" of `/proc/self/limits`.
fn parse_max_fds(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The boot time, from `/proc/stat`'s `btime`.
fn parse_boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

impl Process {
    pub(super) fn register(r: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            registered(r, IntGauge::new(name, help).expect("valid metric"))
        };
        Self {
            cpu: registered(
                r,
                Counter::new(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                )
                .expect("valid metric"),
            ),
            counted: Mutex::new(0.0),
            resident: gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virtual_memory: gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            open_fds: gauge("process_open_fds", "Number of open file descriptors."),
            max_fds: gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            threads: gauge("process_threads", "Number of OS threads in the process."),
            start_time: registered(
                r,
                Gauge::new(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                )
                .expect("valid metric"),
            ),
        }
    }

    /// Reads `/proc/self` now; a figure the kernel does not give keeps its last value.
    pub(super) fn measure(&self) {
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as i64;
        if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| parse_stat(&t, ticks.max(1.0), page))
        {
            let mut counted = self.counted.lock_unpoisoned();
            if stat.cpu_seconds > *counted {
                self.cpu.inc_by(stat.cpu_seconds - *counted);
                *counted = stat.cpu_seconds;
            }
            self.threads.set(stat.threads);
            self.virtual_memory.set(stat.virtual_bytes);
            self.resident.set(stat.resident_bytes);
            if let Some(boot) = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|t| parse_boot_time(&t))
            {
                self.start_time.set(boot + stat.start_after_boot_seconds);
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|t| parse_max_fds(&t))
        {
            self.max_fds.set(max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // pid (comm) state ppid ... utime=14 stime=15 ... num_threads=20 ... starttime=22
        // vsize=23 rss=24, with a command name holding ") (".
        let text = "42 (krait) (x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    1000 104857600 2560 18446744073709551615";
        let stat = parse_stat(text, 100.0, 4096).unwrap();
        assert_eq!(
            stat,
            Stat {
                cpu_seconds: 3.0,
                threads: 7,
                start_after_boot_seconds: 10.0,
                virtual_bytes: 104_857_600,
                resident_bytes: 2560 * 4096,
            }
        );
        assert_eq!(parse_stat("garbage", 100.0, 4096), None);
    }

    #[test]
    fn limits_and_boot_time_are_read_and_this_process_is_measured() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 1048576              files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1796550000\n"),
            Some(1796550000.0)
        );

        let registry = Registry::new();
        let process = Process::register(&registry);
        process.measure();
        assert!(process.resident.get() > 0 && process.threads.get() >= 1);
        assert!(process.open_fds.get() > 0 && process.max_fds.get() >= process.open_fds.get());
        assert!(
            process.start_time.get() > 1.7e9,
            "{}",
            process.start_time.get()
        );
    }
}
