//! The agent link end to end: a real agent (the `hoop_proxy::agent` runtime) over
//! real sockets drives agent and connection status.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use bytes::BytesMut;
use hoop_proxy::agent::AgentConfig;
use hoop_proxy::link::messages::Hello;
use hoop_proxy::link::{Frame, FrameKind};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Gateway;
use crate::api::tests::{TestGateway, config, documented_postgres, wait_for};
use crate::testing::{Backend, TestStore, on_both_backends};

fn b64(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

fn spawn_agent(
    key: &str,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> tokio::task::JoinHandle<()> {
    let config = AgentConfig {
        key: key.parse().unwrap(),
        tls,
    };
    tokio::spawn(hoop_proxy::agent::run(config))
}

async fn tcp_connection(gw: &TestGateway, name: &str, agent_id: &str, port: u16) {
    let body = json!({
        "name": name,
        "type": "application",
        "subtype": "tcp",
        "agent_id": agent_id,
        "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64(&port.to_string())},
    });
    let response = gw
        .admin
        .json(Method::POST, "/api/connections", &body)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
}

async fn status_follows_link_and_reachability(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let (agent_id, key) = gw.agent("edge").await;
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    tcp_connection(&gw, "svc", &agent_id, port).await;
    let example = gw
        .admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("example", &agent_id),
        )
        .await
        .unwrap();
    assert_eq!(example.status, StatusCode::CREATED);
    assert_eq!(
        gw.admin.get("/api/agents/edge").await.unwrap().body["status"],
        "DISCONNECTED"
    );

    let agent = spawn_agent(&key, None);
    wait_for(&gw.admin, "/api/agents/edge", "status", "CONNECTED").await;
    wait_for(&gw.admin, "/api/connections/svc", "status", "online").await;
    let shown = gw.admin.get("/api/agents/edge").await.unwrap().body;
    assert!(
        shown["hostname"].is_string() && shown["platform"].is_string(),
        "{shown}"
    );
    // The documentation's example host does not resolve here: offline.
    assert_eq!(
        gw.admin.get("/api/connections/example").await.unwrap().body["status"],
        "offline"
    );
    let online = gw
        .admin
        .get("/api/connections?status=online")
        .await
        .unwrap();
    assert_eq!(online.body.as_array().unwrap().len(), 1);

    // The service stops: offline; it returns: online.
    drop(target);
    wait_for(&gw.admin, "/api/connections/svc", "status", "offline").await;
    let target = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    wait_for(&gw.admin, "/api/connections/svc", "status", "online").await;

    // A connection added while linked is checked too.
    let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
    tcp_connection(&gw, "svc2", &agent_id, second.local_addr().unwrap().port()).await;
    wait_for(&gw.admin, "/api/connections/svc2", "status", "online").await;

    // The agent dies: its link closes and everything goes offline.
    agent.abort();
    let _ = agent.await;
    wait_for(&gw.admin, "/api/connections/svc", "status", "offline").await;
    wait_for(&gw.admin, "/api/agents/edge", "status", "DISCONNECTED").await;

    // It comes back.
    let agent = spawn_agent(&key, None);
    wait_for(&gw.admin, "/api/connections/svc", "status", "online").await;
    agent.abort();
    drop(target);
}

async fn gateway_restart_marks_offline_until_agents_return(backend: Backend) {
    let test = TestStore::new(backend).await;
    let mut config = config(&test);
    // A fixed agent port, so the agent's key still points at the new gateway.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.agent_listen = probe.local_addr().unwrap().to_string();
    drop(probe);
    let gateway = Gateway::start(config.clone()).await.unwrap();
    let token = gateway.first_admin_token.clone().unwrap();
    let admin = crate::api::tests::client(&gateway, Some(&token));
    let created = admin
        .json(Method::POST, "/api/agents", &json!({"name": "edge"}))
        .await
        .unwrap();
    let key = created.body["token"].as_str().unwrap().to_owned();
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let body = json!({
        "name": "svc", "type": "application", "subtype": "tcp", "agent_id": "edge",
        "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64(&target.local_addr().unwrap().port().to_string())},
    });
    admin
        .json(Method::POST, "/api/connections", &body)
        .await
        .unwrap();
    let agent = spawn_agent(&key, None);
    wait_for(&admin, "/api/connections/svc", "status", "online").await;
    // The agent finds the restarted gateway by itself. (Dropping a gateway
    // only aborts its tasks; shutting it down frees its ports.)
    gateway.shutdown().await;
    let gateway = Gateway::start(config.clone()).await.unwrap();
    let admin = crate::api::tests::client(&gateway, Some(&token));
    wait_for(&admin, "/api/connections/svc", "status", "online").await;
    // A restarted gateway knows no link: offline until an agent returns.
    agent.abort();
    gateway.shutdown().await;
    let gateway = Gateway::start(config).await.unwrap();
    let admin = crate::api::tests::client(&gateway, Some(&token));
    let shown = admin.get("/api/connections/svc").await.unwrap().body;
    assert_eq!(shown["status"], "offline");
    let agent = spawn_agent(&key, None);
    wait_for(&admin, "/api/connections/svc", "status", "online").await;
    agent.abort();
}

on_both_backends!(
    status_follows_link_and_reachability,
    gateway_restart_marks_offline_until_agents_return,
);

async fn hello(
    address: std::net::SocketAddr,
    name: &str,
    secret: &str,
) -> (FrameKind, bytes::Bytes, bool) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let hello = Hello {
        name: name.into(),
        secret: secret.into(),
        version: "test".into(),
        hostname: "h".into(),
        platform: "p".into(),
    };
    let mut out = BytesMut::new();
    Frame::control(FrameKind::Hello, serde_json::to_vec(&hello).unwrap())
        .encode(&mut out)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    let mut buffer = BytesMut::new();
    let frame = loop {
        if let Some(frame) = Frame::decode(&mut buffer).unwrap() {
            break frame;
        }
        assert!(
            stream.read_buf(&mut buffer).await.unwrap() > 0,
            "closed without an answer"
        );
    };
    let closed = matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    );
    (frame.kind, frame.payload, closed)
}

#[tokio::test]
async fn bad_keys_are_refused_without_revealing_the_agent() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let (_, key) = gw.agent("edge").await;
    let key: hoop_proxy::link::AgentKey = key.parse().unwrap();
    let address = gw.gateway.agent_addr;
    let wrong_secret = hello(address, "edge", "not-the-secret").await;
    let unknown_agent = hello(address, "ghost", "not-the-secret").await;
    assert_eq!(wrong_secret.0, FrameKind::Refused);
    assert!(wrong_secret.2, "link left open after a refusal");
    assert_eq!(wrong_secret, unknown_agent);
    let right = hello(address, "edge", &key.secret).await;
    assert_eq!(right.0, FrameKind::Welcome);
    // Garbage instead of a hello: the gateway closes the link.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(&[0xff; 64]).await.unwrap();
    let mut sink = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut sink))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(
        gw.admin.get("/api/agents/edge").await.unwrap().body["status"],
        "DISCONNECTED"
    );
}

#[tokio::test]
async fn a_silent_link_is_dropped_within_ten_seconds() {
    // An agent whose network is cut sends nothing and never closes: only
    // the heartbeat deadline can notice.
    let gw = TestGateway::start(Backend::Sqlite).await;
    let (_, key) = gw.agent("edge").await;
    let key: hoop_proxy::link::AgentKey = key.parse().unwrap();
    let mut stream = TcpStream::connect(gw.gateway.agent_addr).await.unwrap();
    let hello = Hello {
        name: "edge".into(),
        secret: key.secret.clone(),
        version: "test".into(),
        hostname: "h".into(),
        platform: "p".into(),
    };
    let mut out = BytesMut::new();
    Frame::control(FrameKind::Hello, serde_json::to_vec(&hello).unwrap())
        .encode(&mut out)
        .unwrap();
    stream.write_all(&out).await.unwrap();
    wait_for(&gw.admin, "/api/agents/edge", "status", "CONNECTED").await;
    wait_for(&gw.admin, "/api/agents/edge", "status", "DISCONNECTED").await;
    drop(stream);
}

#[tokio::test]
async fn link_uses_tls_when_the_gateway_has_a_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let test = TestStore::new(Backend::Sqlite).await;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let dir = test.dir.path();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), server_key.serialize_pem()).unwrap();
    let mut config = config(&test);
    config.tls_cert = Some(dir.join("cert.pem"));
    config.tls_key = Some(dir.join("key.pem"));
    let gateway = Gateway::start(config).await.unwrap();
    // The API is HTTPS with the same certificate.
    assert!(gateway.api_url().starts_with("https://"));
    let endpoint =
        crate::client::Endpoint::new(&gateway.api_url(), Some(&dir.join("ca.pem"))).unwrap();
    let admin =
        crate::client::ApiClient::with_endpoint(endpoint, gateway.first_admin_token.clone());
    let created = admin
        .json(Method::POST, "/api/agents", &json!({"name": "edge"}))
        .await
        .unwrap();
    let key = created.body["token"].as_str().unwrap();
    assert!(key.starts_with("hoops://"), "{key}");
    let tls = hoop_proxy::agent::tls_client_config(&dir.join("ca.pem")).unwrap();
    let agent = spawn_agent(key, Some(tls));
    wait_for(&admin, "/api/agents/edge", "status", "CONNECTED").await;
    agent.abort();
    // A plain-text hello to a TLS listener gets no welcome.
    let plain = TcpStream::connect(gateway.agent_addr).await;
    let mut plain = plain.unwrap();
    let mut out = BytesMut::new();
    Frame::control(FrameKind::Hello, &b"{}"[..])
        .encode(&mut out)
        .unwrap();
    plain.write_all(&out).await.unwrap();
    let mut buffer = BytesMut::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_buf(&mut buffer)).await;
    assert!(!matches!(
        Frame::decode(&mut buffer),
        Ok(Some(Frame {
            kind: FrameKind::Welcome,
            ..
        }))
    ));
}
