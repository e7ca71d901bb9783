//! The HTTP stack's floor, for `bench/serve.sh`: what axum and hyper on this machine answer at
//! saturation when the handler does nothing. Same shape as `gyre serve` (one single-threaded
//! tokio runtime per core, keep-alive HTTP/1.1, TCP_NODELAY), one route, `POST /v1/predict`,
//! which takes the body and answers a constant JSON body of the size of a one-row prediction.
//! gyre's throughput against this floor shows what the model, the log and the bookkeeping cost
//! per request; the floor itself bounds any handler.
//!
//! Usage: `cargo run --release -p gyre-server --example http_floor -- 127.0.0.1:18473`

use axum::serve::ListenerExt;
use axum::{Router, routing::post};

const ANSWER: &str = r#"{"predictions":[{"id":"12-345678","model":"20261127-000000-abcd","label":"<=50K","scores":[0.9974727767629662,0.0025272232370338013]}]}"#;

fn main() -> std::io::Result<()> {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18473".into())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let mut threads = Vec::new();
        for _ in 0..cores {
            let listener = listener.try_clone()?;
            threads.push(scope.spawn(move || -> std::io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    // Every runtime accepts from the same socket.
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let app = Router::new().route(
                        "/v1/predict",
                        post(|body: axum::body::Bytes| async move {
                            std::hint::black_box(body);
                            ([("content-type", "application/json")], ANSWER)
                        }),
                    );
                    axum::serve(listener.tap_io(|s| drop(s.set_nodelay(true))), app).await
                })
            }));
        }
        println!("listening on {addr}");
        for t in threads {
            t.join().expect("a server thread does not panic")?;
        }
        Ok(())
    })
}
