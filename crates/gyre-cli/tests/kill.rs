//! A `kill -9` in the middle of a large import leaves a valid project with no trace of it.

mod common;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

/// A seeded CSV large enough that importing it takes a while (about 1.5M rows).
fn big_csv(p: &Project) -> std::path::PathBuf {
    let path = p.path().join("big.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(f, "date,delay,distance,origin,destination").unwrap();
    let mut s: u64 = 42;
    for i in 0..1_500_000u64 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = s >> 33;
        writeln!(
            f,
            "2001-01-{:02}T{:02}:{:02},{},{},A{},B{}",
            1 + (i / 50_000) % 28,
            (i / 60) % 24,
            i % 60,
            (r % 200) as i64 - 20,
            100 + r % 2500,
            r % 200,
            (r >> 8) % 200
        )
        .unwrap();
    }
    f.flush().unwrap();
    path
}

fn assert_untouched(p: &Project, before: &(usize, Vec<std::path::PathBuf>)) {
    // Any command reopens the project, which sweeps abandoned temp files.
    let data = p.json(&["data"]);
    assert_eq!(data["datasets"].as_array().unwrap().len(), 0);
    assert_eq!(&p.snapshot(), before);
    assert!(
        files_under(&p.path().join(".gyre/tmp")).is_empty(),
        "temp files left behind"
    );
}

#[test]
fn kill_during_import_leaves_no_trace() {
    let p = Project::new();
    let csv = big_csv(&p);
    let before = p.snapshot();

    // 1. Killed while reading.
    let mut child = p
        .cmd(&["import", csv.to_str().unwrap(), "--target", "delay"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        child.try_wait().unwrap().is_none(),
        "import ended too soon to test"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_untouched(&p, &before);

    // 2. Killed as late as we can catch it: when its object's temp file appears.
    let mut child = p
        .cmd(&["import", csv.to_str().unwrap(), "--target", "delay"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tmp = p.path().join(".gyre/tmp");
    let start = Instant::now();
    let mut killed = false;
    while start.elapsed() < Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if !files_under(&tmp).is_empty() {
            child.kill().unwrap();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.wait().unwrap();
    if killed {
        assert_untouched(&p, &before);
    } else {
        // It finished first: then the project must hold the whole import.
        let data = p.json(&["data"]);
        assert_eq!(data["datasets"][0]["rows"], 1_500_000);
    }
}
