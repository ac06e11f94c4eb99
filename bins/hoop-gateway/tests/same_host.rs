//! The handoff socket `hoop connect` uses on the gateway's host: a real
//! client (tokio-postgres) handed over reaches the real PostgreSQL, and
//! whatever a local process sends instead is refused without stopping it.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use hoop_gateway::same_host::{self, ConnectSocket, HandoffError};
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

mod common;

use common::{Route, Setup};

/// The socket, as the gateway tells a person with a token.
async fn socket_of(setup: &Setup) -> ConnectSocket {
    let info = setup.admin.get("/api/serverinfo").await.unwrap();
    assert_eq!(info.status, StatusCode::OK, "{:?}", info.body);
    ConnectSocket {
        path: PathBuf::from(info.body["connect_socket"].as_str().unwrap()),
        instance_id: info.body["instance_id"].as_str().unwrap().to_owned(),
    }
}

/// A real client connecting to a local port, and the accepted socket a
/// `hoop connect` would hand over. The client waits for the server's
/// answer to its startup: hand the socket over, then await the client.
async fn client_and_accepted(
    setup: &Setup,
) -> (TcpStream, tokio::task::JoinHandle<tokio_postgres::Client>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let database = setup.database.clone();
    let connecting = tokio::spawn(async move {
        let (client, connection) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=noop dbname={database}"),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        client
    });
    let (accepted, _) = listener.accept().await.unwrap();
    (accepted, connecting)
}

/// Sends `line` on a fresh connection to the socket, with `attach` as the
/// descriptor if any, and returns the gateway's answer (empty when it
/// closed without one).
async fn exchange(
    socket: &ConnectSocket,
    line: &[u8],
    attach: Option<std::os::fd::BorrowedFd<'_>>,
) -> Value {
    let mut peer = UnixStream::connect(&socket.path).await.unwrap();
    // The gateway says who it is first: {"instance_id":"..."} and a newline.
    let mut greeting = vec![0u8; socket.instance_id.len() + 19];
    peer.read_exact(&mut greeting).await.unwrap();
    let greeting: Value = serde_json::from_slice(&greeting).unwrap();
    assert_eq!(greeting["instance_id"], socket.instance_id.as_str());
    peer.writable().await.unwrap();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    let fds: Vec<_> = attach.into_iter().collect();
    if !fds.is_empty() {
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
    }
    let sent = rustix::net::sendmsg(
        &peer,
        &[IoSlice::new(line)],
        &mut control,
        rustix::net::SendFlags::empty(),
    )
    .unwrap();
    peer.write_all(&line[sent..]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), peer.read_to_end(&mut answer))
        .await
        .expect("the gateway neither answered nor closed");
    // Closing with bytes unread resets the connection: no answer either.
    if let Err(error) = read {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    }
    if answer.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&answer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_handoffs_are_refused_and_the_socket_keeps_serving() {
    for route in [Route::InPlace, Route::Link] {
        let setup = Setup::start_with(false, route).await;
        setup.connection("pg", 5432, json!({})).await;
        setup.wait_status("pg", "online").await;
        let socket = socket_of(&setup).await;
        let refused = |answer: &Value, why: &str| {
            assert_eq!(answer["accepted"], false, "{answer}");
            assert!(
                answer["message"].as_str().unwrap_or_default().contains(why),
                "{answer}"
            );
        };

        // A peer that connects and says nothing holds only its own task.
        let _stalled = UnixStream::connect(&socket.path).await.unwrap();
        refused(&exchange(&socket, b"not json\n", None).await, "malformed");
        let request = format!("{}\n", json!({"connection": "pg", "token": setup.token}));
        refused(
            &exchange(&socket, request.as_bytes(), None).await,
            "no client socket",
        );
        let file = std::fs::File::open("/dev/null").unwrap();
        refused(
            &exchange(&socket, request.as_bytes(), Some(file.as_fd())).await,
            "not a stream socket",
        );
        // A line past the limit is not read to its end.
        let endless = vec![b'x'; 64 * 1024];
        assert_eq!(exchange(&socket, &endless, None).await, Value::Null);

        // Another gateway answering on the path (the API was reached
        // through a port forward) gets neither the token nor the client.
        let (accepted, _client) = client_and_accepted(&setup).await;
        let elsewhere = ConnectSocket {
            instance_id: "another-gateway".into(),
            ..socket.clone()
        };
        match same_host::hand_over(&elsewhere, accepted, "pg", &setup.token).await {
            Err(HandoffError::Unreachable { error, .. }) => {
                assert!(error.to_string().contains("another gateway"), "{error}");
            }
            other => panic!("handed to another gateway: {other:?}"),
        }

        // The checks are the tunnel's: a wrong token is refused and
        // recorded; nothing reaches the database.
        let (accepted, _client) = client_and_accepted(&setup).await;
        match same_host::hand_over(&socket, accepted, "pg", "wrong-token").await {
            Err(HandoffError::Refused(message)) => {
                assert!(message.contains("token"), "{message}");
            }
            other => panic!("a wrong token was not refused: {other:?}"),
        }

        // And a real client handed over is served.
        let (accepted, connecting) = client_and_accepted(&setup).await;
        same_host::hand_over(&socket, accepted, "pg", &setup.token)
            .await
            .unwrap();
        let client = connecting.await.unwrap();
        let rows = client
            .query("SELECT email FROM people ORDER BY id", &[])
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        drop(client);

        let sessions = setup.sessions("pg").await;
        let statuses: Vec<&str> = sessions.iter().map(|s| s.status.as_str()).collect();
        assert!(statuses.contains(&"refused"), "{statuses:?}");
        assert_eq!(
            sessions
                .iter()
                .filter(|s| s.access_mode == "connect")
                .count(),
            2,
            "{statuses:?}"
        );
        setup.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverinfo_tells_the_socket_only_to_a_person_with_a_token() {
    let setup = Setup::start_with(false, Route::InPlace).await;
    let socket = socket_of(&setup).await;
    assert!(
        socket.path.starts_with(&setup.dir),
        "{}",
        socket.path.display()
    );
    assert!(socket.path.exists());
    let anonymous =
        hoop_gateway::client::ApiClient::new(&format!("http://{}", setup.gateway.api_addr), None)
            .unwrap();
    let info = anonymous.get("/api/serverinfo").await.unwrap();
    assert_eq!(info.status, StatusCode::UNAUTHORIZED, "{:?}", info.body);
    setup.stop().await;
}
