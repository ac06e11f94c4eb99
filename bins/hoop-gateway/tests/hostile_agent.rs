//! An agent with its own valid key, speaking the link protocol by hand,
//! tries to write audit events into a session that is not its own (issue
//! 13, item 5: an EVENTS frame's inner `session_id` was trusted, so an
//! agent could append `DROP DATABASE production` to another agent's closed
//! session). Every way in is refused and logged with the agent's name; its
//! own session's events still go in.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hoop_proxy::link::messages::{
    EventsAck, Hello, OpenSession, SessionEnd, SessionEvents, Status, Targets,
};
use hoop_proxy::link::{AgentKey, Frame, FrameKind};
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

mod common;

use common::{Setup, wait_events};

/// The warnings the gateway logs, captured.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An agent that speaks the link by hand.
struct RawAgent {
    write: WriteHalf<TcpStream>,
    frames: mpsc::UnboundedReceiver<Frame>,
}

impl RawAgent {
    async fn link(address: std::net::SocketAddr, key: &AgentKey) -> Self {
        let stream = TcpStream::connect(address).await.unwrap();
        let (mut read, write) = tokio::io::split(stream);
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buffer = BytesMut::new();
            loop {
                while let Some(frame) = Frame::decode(&mut buffer).unwrap() {
                    let _ = tx.send(frame);
                }
                if read.read_buf(&mut buffer).await.unwrap_or(0) == 0 {
                    return;
                }
            }
        });
        let mut agent = Self { write, frames };
        let hello = Hello {
            name: key.name.clone(),
            secret: key.secret.clone(),
            version: "hostile".into(),
            hostname: "h".into(),
            platform: "p".into(),
        };
        agent
            .send(Frame::control(
                FrameKind::Hello,
                serde_json::to_vec(&hello).unwrap(),
            ))
            .await;
        assert_eq!(
            agent.next(FrameKind::Welcome).await.kind,
            FrameKind::Welcome
        );
        agent
    }

    async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        frame.encode(&mut out).unwrap();
        self.write.write_all(&out).await.unwrap();
    }

    /// The next frame of `kind`, skipping others; pings the gateway while
    /// it waits, or the link would be dropped as silent.
    async fn next(&mut self, kind: FrameKind) -> Frame {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "no {kind:?} frame");
            let Ok(frame) = tokio::time::timeout(Duration::from_secs(1), self.frames.recv()).await
            else {
                self.send(Frame::control(FrameKind::Ping, bytes::Bytes::new()))
                    .await;
                continue;
            };
            let frame = frame.expect("the gateway closed the link");
            if frame.kind == kind {
                return frame;
            }
        }
    }

    /// An `EVENTS` frame on `stream` claiming `session_id`.
    async fn events(&mut self, stream: u32, session_id: &str, first_seq: i64, statement: &str) {
        let event = json!({"seq": first_seq, "type": "statement", "time": 1,
                           "statement": statement, "rows": 0, "duration_ms": 0.0,
                           "refused": false});
        let batch = SessionEvents {
            session_id: session_id.to_owned(),
            first_seq,
            events: vec![serde_json::value::to_raw_value(&event).unwrap()],
            dropped: 0,
        };
        self.send(Frame {
            kind: FrameKind::Events,
            stream,
            payload: serde_json::to_vec(&batch).unwrap().into(),
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_write_into_sessions_not_its_own() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init();

    let setup = Setup::start(false).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let created = setup
        .admin
        .json(Method::POST, "/api/agents", &json!({"name": "evil"}))
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED);
    let key: AgentKey = created.body["token"].as_str().unwrap().parse().unwrap();
    let evil_connection = setup
        .connection("evilconn", 5432, json!({"agent_id": "evil"}))
        .await;

    // The victim: a psql session served by the other agent, closed.
    let victim = setup.run_psql("pg", &setup.token, "SELECT 'victim'").await;
    assert!(victim.status.success());
    let victim = setup.ended_session("pg").await.id;
    wait_events(&setup.admin, &victim, "end").await;

    // The hostile agent links with its own key and reports its
    // connection reachable, so sessions on it open.
    let mut evil = RawAgent::link(setup.gateway.agent_addr, &key).await;
    let targets: Targets =
        serde_json::from_slice(&evil.next(FrameKind::Targets).await.payload).unwrap();
    let reachable = targets
        .targets
        .iter()
        .map(|t| (t.connection_id.clone(), true))
        .collect();
    evil.send(Frame::control(
        FrameKind::Status,
        serde_json::to_vec(&Status { reachable }).unwrap(),
    ))
    .await;
    assert_eq!(targets.targets[0].connection_id, evil_connection["id"]);
    setup.wait_status("evilconn", "online").await;

    // A session of its own, on a stream the gateway opens for it.
    let admin = hoop_gateway::client::ApiClient::new(
        &format!("http://{}", setup.gateway.api_addr),
        Some(setup.token.clone()),
    )
    .unwrap();
    let exec = tokio::spawn(async move {
        admin
            .json(
                Method::POST,
                "/api/sessions",
                &json!({"connection": "evilconn", "script": "SELECT 1"}),
            )
            .await
            .unwrap()
    });
    let open = evil.next(FrameKind::Open).await;
    let stream = open.stream;
    let own: OpenSession = serde_json::from_slice(&open.payload).unwrap();

    // 1. On its own stream, the victim's session id.
    evil.events(stream, &victim, 1000, "DROP DATABASE production")
        .await;
    // 2. On stream 0, as a batch sent again after a relink.
    evil.events(0, &victim, 2000, "DROP DATABASE production")
        .await;
    // 3. On a stream that is not open.
    evil.events(4242, &victim, 3000, "DROP DATABASE production")
        .await;
    // Its own session's events, on its stream: accepted.
    evil.events(stream, &own.session_id, 0, "SELECT 'own'")
        .await;
    let end = SessionEnd {
        status: "done".into(),
        error: None,
        exit_code: Some(0),
        truncated: false,
    };
    evil.send(Frame {
        kind: FrameKind::Close,
        stream,
        payload: serde_json::to_vec(&end).unwrap().into(),
    })
    .await;
    assert_eq!(exec.await.unwrap().body["exit_code"], 0);

    // Frames are handled in order: once its own batch is stored, the
    // attempts before it were judged.
    wait_events(&setup.admin, &own.session_id, "statement").await;
    let victim_text = setup
        .admin
        .get(&format!("/api/sessions/{victim}/events"))
        .await
        .unwrap()
        .body
        .to_string();
    assert!(
        !victim_text.contains("DROP DATABASE"),
        "the hostile agent wrote into the victim's session: {victim_text}"
    );
    assert!(victim_text.contains("victim"), "{victim_text}");

    // Sent again on stream 0 after its stream ended: its own, accepted.
    evil.events(0, &own.session_id, 1, "SELECT 'own again'")
        .await;

    // The agent hears which batches it may forget.
    let mut acked = Vec::new();
    while !acked.iter().any(|(s, q)| s == &own.session_id && *q == 1) {
        let ack: EventsAck =
            serde_json::from_slice(&evil.next(FrameKind::EventsAck).await.payload).unwrap();
        acked.extend(ack.batches.into_iter().map(|b| (b.session_id, b.first_seq)));
    }
    let own_events = wait_events(&setup.admin, &own.session_id, "statement").await;
    let own_text: Vec<&str> = own_events
        .iter()
        .filter_map(|e| e["statement"].as_str())
        .collect();
    assert_eq!(own_text, ["SELECT 'own'", "SELECT 'own again'"]);

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let refusals: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("refused audit events"))
        .collect();
    assert_eq!(refusals.len(), 3, "{logged}");
    for refusal in refusals {
        assert!(refusal.contains("agent=evil"), "{refusal}");
        assert!(refusal.contains(&victim), "{refusal}");
    }
    setup.stop().await;
}
