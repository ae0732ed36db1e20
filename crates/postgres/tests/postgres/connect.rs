//! A connection failure names the server and the operating system's reason.

use reportroot_postgres::PostgresStorage;

#[tokio::test]
async fn a_refused_connection_names_host_port_and_cause() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let url = format!("postgres://reportroot@127.0.0.1:{port}/reportroot");
    let Err(error) = PostgresStorage::connect(&url, 1).await else {
        panic!("connected to a closed port");
    };
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("Connection refused"), "{message}");
}
