//! A real `krait-broker` process on 127.0.0.1 for the Kafka-side tests, found through
//! `KRAIT_BROKER_BIN` (required: the tests using it are ignored unless asked for); stopped
//! (kill) when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `krait-broker` binary named by `KRAIT_BROKER_BIN`. Panics when it is unset or missing:
/// the tests that call this are `#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]`, so
/// one running was asked for and must not pass without a broker.
pub fn broker_bin() -> PathBuf {
    let bin = std::env::var_os("KRAIT_BROKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "KRAIT_BROKER_BIN is not set: point it at a built krait-broker \
             (cargo build --release --bin krait-broker; tests/run sets it)"
            )
        });
    assert!(
        bin.exists(),
        "KRAIT_BROKER_BIN={} does not exist",
        bin.display()
    );
    bin
}

pub struct Broker {
    child: Child,
    pub address: String,
    _data: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker from [`broker_bin`].
    pub fn start() -> Broker {
        let bin = broker_bin();
        let data = tempfile::tempdir().unwrap();
        // A free port: bind to 0, read it, release it for the broker.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let child = Command::new(&bin)
            .arg("--data-dir")
            .arg(data.path())
            .arg("--listen")
            .arg(&address)
            .env("KRAIT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut broker = Broker {
            child,
            address,
            _data: data,
        };
        broker.wait_listening(Duration::from_secs(60));
        broker
    }

    fn wait_listening(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect(&self.address).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("krait-broker exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "krait-broker not listening on {} after {timeout:?}",
                self.address
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
