//! An open-loop load generator for the serving benchmark (bench/serve.py): sends request bodies
//! (one per line of BODIES_FILE, taken in turn) at an even, fixed rate over keep-alive HTTP/1.1
//! connections and reports latency percentiles.
//!
//! Why our own: wrk 4 (Debian's) has no rate option, and its per-connection pause counts whole
//! milliseconds, so "fixed rate" with wrk means bursts at each millisecond tick. wrk2 is not
//! packaged. Like wrk2, latency here is measured from the moment a request was *scheduled*, not
//! sent, so a slow answer that delays the next request is charged to the server (no coordinated
//! omission).
//!
//! `cargo run --release -p gyre-server --example pace -- ADDR BODIES_FILE RATE SECONDS [THREADS]`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: pace ADDR BODIES_FILE RATE SECONDS [THREADS]");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let text = std::fs::read_to_string(&args[2]).expect("bodies file");
    // Each request, ready to send: request k carries body k modulo their number.
    let requests: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|body| {
            let mut r = format!(
                "POST /v1/predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body.as_bytes());
            r
        })
        .collect();
    assert!(!requests.is_empty(), "no request body in {}", args[2]);
    let requests = std::sync::Arc::new(requests);
    let rate: f64 = args[3].parse().expect("rate");
    let seconds: f64 = args[4].parse().expect("seconds");
    let threads: usize = args.get(5).map_or(4, |t| t.parse().expect("threads"));
    let total = (rate * seconds) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    // A server that cannot keep up does not get to stretch the test: what is not sent by the end
    // (plus a second of grace) is counted as missed.
    let deadline = start + Duration::from_secs_f64(seconds + 1.0);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (addr, requests) = (addr.clone(), requests.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let (mut latencies, mut errors, mut missed) = (Vec::new(), 0usize, 0usize);
                let mut line = String::new();
                for k in (t..total).step_by(threads) {
                    let scheduled = start + interval * k as u32;
                    let now = Instant::now();
                    if now > deadline {
                        missed += 1;
                        continue;
                    }
                    if scheduled > now {
                        std::thread::sleep(scheduled - now);
                    }
                    stream
                        .write_all(&requests[k % requests.len()])
                        .expect("send");
                    // Status line, headers up to the blank line, then Content-Length bytes.
                    let mut length = 0usize;
                    let mut status_ok = false;
                    let mut first = true;
                    loop {
                        line.clear();
                        reader.read_line(&mut line).expect("read");
                        if first {
                            status_ok = line.starts_with("HTTP/1.1 200");
                            first = false;
                        }
                        if line == "\r\n" || line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().expect("content-length");
                        }
                    }
                    let mut buf = vec![0; length];
                    reader.read_exact(&mut buf).expect("body");
                    latencies.push(scheduled.elapsed());
                    if !status_ok {
                        errors += 1;
                    }
                }
                (latencies, errors, missed)
            })
        })
        .collect();
    let mut all = Vec::new();
    let (mut errors, mut missed) = (0, 0);
    for h in handles {
        let (l, e, m) = h.join().expect("thread");
        all.extend(l);
        errors += e;
        missed += m;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{{\"requests\": {}, \"rps\": {:.1}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}, \"p999_ms\": {:.3}, \"max_ms\": {:.3}, \"non_2xx\": {}, \"missed\": {}}}",
        all.len(),
        all.len() as f64 / elapsed,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        q(1.0),
        errors,
        missed
    );
}
