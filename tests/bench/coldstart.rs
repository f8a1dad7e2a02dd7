//! Cold start of every function (SPEC 13): each release binary is started
//! against a minimal Lambda runtime API emulator, and the time from exec to
//! its first `GET /2018-06-01/runtime/invocation/next` is taken (median of
//! 10 starts), with the process's peak RSS at that moment.
//!
//! The binaries come from `cargo build --profile bench --bins` (scripts/bench.sh
//! builds them first: the release profile without its fat LTO) in
//! `$CARGO_TARGET_DIR/release` (default `target/`).
//! Nothing reaches DynamoDB: a function builds its client at start and sends
//! no request until an invocation arrives.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const STARTS: usize = 10;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let release = target.join("release");
    let mut functions: Vec<String> = std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    functions.sort();

    println!("| function | exec → first poll, median of {STARTS} | min–max | peak RSS |");
    println!("| --- | ---: | ---: | ---: |");
    let mut all = Vec::new();
    for name in &functions {
        let binary = release.join(name);
        if !binary.exists() {
            eprintln!(
                "{}: not built (run `cargo build --profile bench --bins`)",
                binary.display()
            );
            std::process::exit(2);
        }
        let mut times = Vec::with_capacity(STARTS);
        let mut peak_kib = 0;
        for _ in 0..STARTS {
            let (elapsed, rss) = one_start(&binary, name);
            times.push(elapsed);
            peak_kib = peak_kib.max(rss);
        }
        times.sort();
        let median = times[STARTS / 2];
        all.push(median);
        println!(
            "| {name} | {:.1} ms | {:.1}–{:.1} ms | {:.1} MiB |",
            ms(median),
            ms(times[0]),
            ms(times[STARTS - 1]),
            peak_kib as f64 / 1024.0
        );
    }
    all.sort();
    println!(
        "\nFIGURE cold start, median over functions of each one's median: {:.1} ms (slowest {:.1} ms)",
        ms(all[all.len() / 2]),
        ms(all[all.len() - 1])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Starts `binary` once; returns the time to its first poll and its peak RSS
/// (KiB) read at that moment, then kills it.
fn one_start(binary: &Path, name: &str) -> (Duration, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the runtime API");
    let addr = listener.local_addr().expect("addr");
    let (polled, first_poll) = mpsc::channel();
    // The emulator: note when the first request line arrives and answer
    // nothing, so the function waits there until it is killed.
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let mut seen = Vec::new();
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let at = Instant::now();
                    let line = String::from_utf8_lossy(&seen);
                    let is_next = line.starts_with("GET /2018-06-01/runtime/invocation/next");
                    let _ = polled.send((at, is_next));
                    // Hold the connection open until the process dies.
                    let _ = conn.read(&mut buf);
                    break;
                }
            }
        }
    });
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "coldstart")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("TABLE_NAME", "coldstart")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the function");
    let outcome = first_poll.recv_timeout(Duration::from_secs(10));
    let rss = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    match outcome {
        Ok((at, true)) => (at.duration_since(started), rss),
        Ok((_, false)) => panic!("{name}: its first request was not a poll for work"),
        Err(_) => panic!("{name}: no poll for work within 10 s"),
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
