//! Why a librdkafka client could not log in: librdkafka reports a failed TLS handshake or SASL
//! exchange only through its log and error callbacks (the request itself just times out), so
//! the CLI keeps the security-related ones and prints them under a failed command's error.
//! Nothing is printed for a command that succeeds.

use std::sync::Mutex;

use krait_sync::MutexExt;

/// At most this many distinct reports are kept; librdkafka repeats them on every reconnect.
const MAX_KEPT: usize = 5;
/// Words of a report about TLS or SASL (compared in lower case).
const SECURITY_WORDS: &[&str] = &["sasl", "authenticat", "ssl", "certificate", "handshake"];

static KEPT: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Collector;

impl log::Log for Collector {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Error
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            keep(&record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static COLLECTOR: Collector = Collector;

/// Routes librdkafka's error reports (through the `log` crate) to the collector.
pub fn install() {
    if log::set_logger(&COLLECTOR).is_ok() {
        log::set_max_level(log::LevelFilter::Error);
    }
}

/// Whether `message` is about TLS or SASL.
pub fn is_security_report(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    SECURITY_WORDS.iter().any(|w| lower.contains(w))
}

fn keep(message: &str) {
    if !is_security_report(message) {
        return;
    }
    let mut kept = KEPT.lock_unpoisoned();
    if kept.len() < MAX_KEPT && !kept.iter().any(|m| m == message) {
        kept.push(message.to_string());
    }
}

/// The security-related reports seen so far, in order.
pub fn security_reports() -> Vec<String> {
    KEPT.lock_unpoisoned().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tls_and_sasl_reports_are_kept() {
        assert!(is_security_report(
            "librdkafka: FAIL [thrd:sasl_ssl://127.0.0.1:9093/bootstrap]: SASL authentication error: Authentication failed"
        ));
        assert!(is_security_report(
            "librdkafka: FAIL ssl://b:9095: SSL handshake failed: certificate verify failed"
        ));
        assert!(!is_security_report(
            "librdkafka: FAIL 127.0.0.1:9092: Connect to ipv4#127.0.0.1:9092 failed: Connection refused"
        ));
    }
}
