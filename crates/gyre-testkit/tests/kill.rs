//! The fault tests' tool: a killed cluster is down (its backends too) and comes back.

#[test]
fn a_killed_cluster_is_down_and_restarts() {
    if !gyre_testkit::require(
        "PostgreSQL: apt-get install postgresql",
        gyre_testkit::postgres_bin().is_some(),
    ) {
        return;
    }
    let pg = gyre_testkit::Postgres::start().unwrap();
    pg.new_database();
    pg.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg.port)).is_err());
    assert!(pg.psql("postgres", "SELECT 1").is_err());
    pg.restart().unwrap();
    assert_eq!(pg.psql("postgres", "SELECT 1").unwrap(), "1");
}

#[test]
fn a_killed_cluster_drops_open_connections() {
    if !gyre_testkit::require(
        "PostgreSQL: apt-get install postgresql",
        gyre_testkit::postgres_bin().is_some(),
    ) {
        return;
    }
    let pg = gyre_testkit::Postgres::start().unwrap();
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        let h = s.spawn(|| pg.psql("postgres", "SELECT pg_sleep(8)"));
        std::thread::sleep(std::time::Duration::from_millis(800));
        pg.kill();
        eprintln!("killed after {:?}", start.elapsed());
        let r = h.join().unwrap();
        eprintln!("{r:?} after {:?}", start.elapsed());
        assert!(r.is_err());
    });
    assert!(start.elapsed().as_secs() < 6);
}

#[test]
fn a_killed_s3_server_is_down() {
    let Ok(s3) = gyre_testkit::S3::start() else {
        gyre_testkit::require("an S3 server: pip install 'moto[server]'", false);
        return;
    };
    s3.new_bucket();
    s3.kill();
    assert!(std::net::TcpStream::connect(("127.0.0.1", s3.port)).is_err());
}
