//! Codec claims on synthetic streams that hold every message type. Streams
//! recorded from real clients and servers are tested in `tests/`.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::DecodeError;

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

/// One of every frontend message, in an order a client could send them.
fn frontend_messages() -> Vec<FrontendMessage> {
    vec![
        FrontendMessage::SslRequest,
        FrontendMessage::GssEncRequest,
        FrontendMessage::Startup(StartupMessage {
            protocol_version: 0x0003_0000,
            params: vec![(b(b"user"), b(b"alice")), (b(b"database"), b(b"shop"))],
        }),
        FrontendMessage::PasswordMessage(AuthResponse::password(b"md5abc")),
        FrontendMessage::PasswordMessage(AuthResponse::sasl_initial(
            b"SCRAM-SHA-256",
            Some(b"n,,n=,r=nonce"),
        )),
        FrontendMessage::PasswordMessage(AuthResponse::sasl_response(b"c=biws,r=nonce,p=proof")),
        FrontendMessage::Query(Query {
            query: b(b"SELECT 1; SELECT 'two'"),
        }),
        FrontendMessage::Parse(Parse {
            name: b(b"s1"),
            query: b(b"SELECT $1::int, $2"),
            param_types: vec![23, 0],
        }),
        FrontendMessage::Bind(Bind {
            portal: b(b""),
            statement: b(b"s1"),
            param_formats: vec![1, 0],
            params: vec![Some(b(&[0, 0, 0, 7])), None],
            result_formats: vec![1],
        }),
        FrontendMessage::Describe(Describe {
            kind: b'P',
            name: b(b""),
        }),
        FrontendMessage::Execute(Execute {
            portal: b(b""),
            max_rows: 100,
        }),
        FrontendMessage::Flush,
        FrontendMessage::Sync,
        FrontendMessage::Close(Close {
            kind: b'S',
            name: b(b"s1"),
        }),
        FrontendMessage::CopyData(CopyData {
            data: b(b"1\talice@example.com\n"),
        }),
        FrontendMessage::CopyDone,
        FrontendMessage::CopyFail(CopyFail {
            message: b(b"aborted by user"),
        }),
        FrontendMessage::FunctionCall(FunctionCall {
            function_oid: 1598,
            arg_formats: vec![],
            args: vec![Some(b(b"x")), None],
            result_format: 0,
        }),
        FrontendMessage::Terminate,
    ]
}

/// One of every backend message, starting with the answers to the client's
/// GSSENCRequest and SSLRequest (both refused).
fn backend_messages() -> Vec<BackendMessage> {
    vec![
        BackendMessage::NegotiationResponse(b'N'),
        BackendMessage::NegotiationResponse(b'N'),
        BackendMessage::Authentication(Authentication::Sasl {
            mechanisms: vec![b(b"SCRAM-SHA-256-PLUS"), b(b"SCRAM-SHA-256")],
        }),
        BackendMessage::Authentication(Authentication::SaslContinue {
            data: b(b"r=nonce,s=c2FsdA==,i=4096"),
        }),
        BackendMessage::Authentication(Authentication::SaslFinal {
            data: b(b"v=signature"),
        }),
        BackendMessage::Authentication(Authentication::Md5Password { salt: [1, 2, 3, 4] }),
        BackendMessage::Authentication(Authentication::CleartextPassword),
        BackendMessage::Authentication(Authentication::KerberosV5),
        BackendMessage::Authentication(Authentication::Gss),
        BackendMessage::Authentication(Authentication::GssContinue { data: b(b"tok") }),
        BackendMessage::Authentication(Authentication::Sspi),
        BackendMessage::Authentication(Authentication::Ok),
        BackendMessage::NegotiateProtocolVersion(NegotiateProtocolVersion {
            newest_minor: 0,
            unrecognized: vec![b(b"_pq_.compression")],
        }),
        BackendMessage::ParameterStatus(ParameterStatus {
            name: b(b"client_encoding"),
            value: b(b"UTF8"),
        }),
        BackendMessage::BackendKeyData(BackendKeyData {
            process_id: 4242,
            secret_key: b(&[9, 8, 7, 6]),
        }),
        BackendMessage::ReadyForQuery(ReadyForQuery { status: b'I' }),
        BackendMessage::RowDescription(RowDescription {
            fields: vec![
                FieldDescription {
                    name: b(b"id"),
                    table_oid: 16384,
                    column_id: 1,
                    type_oid: 23,
                    type_size: 4,
                    type_modifier: -1,
                    format: 0,
                },
                FieldDescription {
                    name: b(b"email"),
                    table_oid: 16384,
                    column_id: 2,
                    type_oid: 25,
                    type_size: -1,
                    type_modifier: -1,
                    format: 0,
                },
            ],
        }),
        BackendMessage::DataRow(DataRow::from_cells([
            Some(&b"1"[..]),
            Some(&b"alice@example.com"[..]),
        ])),
        BackendMessage::DataRow(DataRow::from_cells([Some(&b"2"[..]), None])),
        BackendMessage::CommandComplete(CommandComplete {
            tag: b(b"SELECT 2"),
        }),
        BackendMessage::EmptyQueryResponse,
        BackendMessage::ErrorResponse(Notice::error("ERROR", "42501", "permission denied")),
        BackendMessage::NoticeResponse(Notice::error("NOTICE", "00000", "table exists")),
        BackendMessage::ParseComplete,
        BackendMessage::ParameterDescription(ParameterDescription {
            types: vec![23, 25],
        }),
        BackendMessage::NoData,
        BackendMessage::BindComplete,
        BackendMessage::PortalSuspended,
        BackendMessage::CloseComplete,
        BackendMessage::NotificationResponse(NotificationResponse {
            process_id: 77,
            channel: b(b"jobs"),
            payload: b(b"42"),
        }),
        BackendMessage::CopyInResponse(CopyResponse {
            format: 0,
            column_formats: vec![0, 0],
        }),
        BackendMessage::CopyOutResponse(CopyResponse {
            format: 1,
            column_formats: vec![1],
        }),
        BackendMessage::CopyBothResponse(CopyResponse {
            format: 0,
            column_formats: vec![],
        }),
        BackendMessage::CopyData(CopyData {
            data: b(b"2\tbob\n"),
        }),
        BackendMessage::CopyDone,
        BackendMessage::FunctionCallResponse(FunctionCallResponse {
            result: Some(b(b"t")),
        }),
        BackendMessage::FunctionCallResponse(FunctionCallResponse { result: None }),
        BackendMessage::ReadyForQuery(ReadyForQuery { status: b'T' }),
    ]
}

fn encode_all<M>(messages: &[M], encode: impl Fn(&M, &mut BytesMut)) -> BytesMut {
    let mut buf = BytesMut::new();
    for m in messages {
        encode(m, &mut buf);
    }
    buf
}

fn frontend_stream() -> Bytes {
    encode_all(&frontend_messages(), FrontendMessage::encode).freeze()
}

fn backend_stream() -> Bytes {
    encode_all(&backend_messages(), BackendMessage::encode).freeze()
}

fn backend_decoder() -> BackendDecoder {
    let mut decoder = BackendDecoder::new(Limits::default());
    decoder.expect_negotiation_response();
    decoder.expect_negotiation_response();
    decoder
}

/// Feeds `chunks` one after another, decoding all it can after each.
fn decode_chunks<M>(
    chunks: impl IntoIterator<Item = Bytes>,
    mut decode: impl FnMut(&mut BytesMut) -> Result<Option<M>, DecodeError>,
) -> Result<Vec<M>, DecodeError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(&chunk);
        while let Some(m) = decode(&mut buf)? {
            out.push(m);
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    Ok(out)
}

fn split_at(stream: &Bytes, cuts: &[usize]) -> Vec<Bytes> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([stream.len()]) {
        chunks.push(stream.slice(start..cut));
        start = cut;
    }
    chunks
}

#[test]
fn can_round_trip_all_frontend_messages() {
    let stream = frontend_stream();
    let mut decoder = FrontendDecoder::new(Limits::default());
    let frames = decode_chunks([stream.clone()], |buf| decoder.decode_frame(buf)).unwrap();
    let expected = frontend_messages();
    assert_eq!(frames.len(), expected.len());
    for (frame, expected) in frames.iter().zip(&expected) {
        let parsed = FrontendMessage::parse(frame).unwrap();
        assert_eq!(&parsed, expected);
        let mut again = BytesMut::new();
        parsed.encode(&mut again);
        assert_eq!(again, frame.bytes, "{}", parsed.name());
    }
}

#[test]
fn can_round_trip_all_backend_messages() {
    let stream = backend_stream();
    let mut decoder = backend_decoder();
    let frames = decode_chunks([stream], |buf| decoder.decode_frame(buf)).unwrap();
    let expected = backend_messages();
    assert_eq!(frames.len(), expected.len());
    for (frame, expected) in frames.iter().zip(&expected) {
        let parsed = BackendMessage::parse(frame).unwrap();
        assert_eq!(&parsed, expected);
        let mut again = BytesMut::new();
        parsed.encode(&mut again);
        assert_eq!(again, frame.bytes, "{}", parsed.name());
    }
}

#[test]
fn any_single_split_gives_the_same_messages() {
    let stream = frontend_stream();
    let whole = decode_chunks([stream.clone()], {
        let mut d = FrontendDecoder::new(Limits::default());
        move |buf| d.decode(buf)
    })
    .unwrap();
    for cut in 0..=stream.len() {
        let mut d = FrontendDecoder::new(Limits::default());
        let split = decode_chunks(split_at(&stream, &[cut]), |buf| d.decode(buf)).unwrap();
        assert_eq!(split, whole, "frontend split at {cut}");
    }
    let stream = backend_stream();
    let whole = decode_chunks([stream.clone()], {
        let mut d = backend_decoder();
        move |buf| d.decode(buf)
    })
    .unwrap();
    for cut in 0..=stream.len() {
        let mut d = backend_decoder();
        let split = decode_chunks(split_at(&stream, &[cut]), |buf| d.decode(buf)).unwrap();
        assert_eq!(split, whole, "backend split at {cut}");
    }
}

#[test]
fn every_prefix_of_a_message_needs_more() {
    let mut one = BytesMut::new();
    backend_messages()[16].encode(&mut one); // RowDescription
    for len in 0..one.len() {
        let mut buf = BytesMut::from(&one[..len]);
        let mut d = BackendDecoder::new(Limits::default());
        assert_eq!(d.decode(&mut buf), Ok(None), "prefix of {len} bytes");
        assert_eq!(buf.len(), len, "a prefix must not be consumed");
    }
    let mut startup = BytesMut::new();
    frontend_messages()[2].encode(&mut startup);
    for len in 0..startup.len() {
        let mut buf = BytesMut::from(&startup[..len]);
        let mut d = FrontendDecoder::new(Limits::default());
        assert_eq!(d.decode(&mut buf), Ok(None), "prefix of {len} bytes");
    }
}

/// Shrinking a message's length cuts its body short: every such frame must be
/// rejected as malformed, never parsed as something shorter.
#[test]
fn rejects_shrunken_lengths() {
    for message in backend_messages().iter().skip(2) {
        let mut full = BytesMut::new();
        message.encode(&mut full);
        let body_len = full.len() - 5;
        for shrink in 1..=body_len {
            let mut bytes = BytesMut::from(&full[..full.len() - shrink]);
            let new_len = (full.len() - shrink - 1) as u32;
            bytes[1..5].copy_from_slice(&new_len.to_be_bytes());
            let frame = Frame {
                tag: Some(bytes[0]),
                bytes: bytes.freeze(),
                offset: 0,
            };
            if let Ok(parsed) = BackendMessage::parse(&frame) {
                // Only messages whose trailing field is free-form bytes
                // (CopyData, SASL data, ...) may accept a shorter body, and
                // then they must still re-encode exactly.
                let mut again = BytesMut::new();
                parsed.encode(&mut again);
                assert_eq!(again, frame.bytes, "{}", message.name());
            }
        }
    }
}

#[test]
fn rejects_unknown_tags_and_stays_failed() {
    let mut d = BackendDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"\x7f\0\0\0\x04"[..]);
    let err = d.decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownMessage {
            offset: 0,
            tag: 0x7f
        }
    );
    let mut good = BytesMut::new();
    BackendMessage::NoData.encode(&mut good);
    assert_eq!(d.decode(&mut good), Err(err), "errors are sticky");
}

#[test]
fn rejects_lengths_that_do_not_count_themselves() {
    let mut d = FrontendDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"\0\0\0\x09\0\x03\0\0\0Q\0\0\0\x03"[..]);
    assert!(matches!(
        d.decode(&mut buf),
        Ok(Some(FrontendMessage::Startup(_)))
    ));
    assert_eq!(
        d.decode(&mut buf),
        Err(DecodeError::InvalidLength { offset: 9, len: 3 })
    );
}

#[test]
fn refuses_messages_over_the_limit_before_buffering_them() {
    let limits = Limits {
        max_message_len: 1024,
        ..Limits::default()
    };
    let mut d = BackendDecoder::new(limits);
    // A DataRow claiming 1 GiB: refused on its header alone.
    let mut buf = BytesMut::from(&b"D\x40\0\0\0"[..]);
    assert!(matches!(
        d.decode(&mut buf),
        Err(DecodeError::TooLarge {
            message: "DataRow",
            ..
        })
    ));
    let mut d = FrontendDecoder::new(Limits::default());
    let mut buf = BytesMut::from(&b"\0\x01\0\0\0\x03\0\0"[..]);
    assert!(matches!(
        d.decode(&mut buf),
        Err(DecodeError::TooLarge {
            message: "StartupMessage",
            ..
        })
    ));
}

#[test]
fn counts_larger_than_the_message_are_rejected_without_allocating() {
    // A DataRow claiming 65535 cells in a 6-byte body.
    let frame = Frame {
        tag: Some(b'D'),
        bytes: b(b"D\0\0\0\x06\xff\xff"),
        offset: 0,
    };
    assert!(matches!(
        BackendMessage::parse(&frame),
        Err(DecodeError::Malformed {
            message: "DataRow",
            ..
        })
    ));
}

#[test]
fn tls_after_ssl_request_is_reported_as_encrypted() {
    let mut front = FrontendDecoder::new(Limits::default());
    let mut buf = BytesMut::new();
    FrontendMessage::SslRequest.encode(&mut buf);
    buf.extend_from_slice(b"\x16\x03\x01\x02\x00\x01");
    assert_eq!(
        front.decode(&mut buf),
        Ok(Some(FrontendMessage::SslRequest))
    );
    assert_eq!(
        front.decode(&mut buf),
        Err(DecodeError::Encrypted { offset: 8 })
    );

    let mut back = BackendDecoder::new(Limits::default());
    back.expect_negotiation_response();
    let mut buf = BytesMut::from(&b"S"[..]);
    assert_eq!(
        back.decode(&mut buf),
        Ok(Some(BackendMessage::NegotiationResponse(b'S')))
    );
    assert_eq!(back.decode(&mut buf), Ok(None), "nothing more arrived yet");
    buf.extend_from_slice(b"\x16\x03\x03");
    assert_eq!(
        back.decode(&mut buf),
        Err(DecodeError::Encrypted { offset: 1 })
    );
}

#[test]
fn server_error_instead_of_negotiation_answer_is_decoded() {
    let mut back = BackendDecoder::new(Limits::default());
    back.expect_negotiation_response();
    let mut buf = BytesMut::new();
    BackendMessage::ErrorResponse(Notice::error("FATAL", "08P01", "unsupported")).encode(&mut buf);
    assert!(matches!(
        back.decode(&mut buf),
        Ok(Some(BackendMessage::ErrorResponse(_)))
    ));
}

#[test]
fn data_row_cells_are_views_of_the_message() {
    let row = DataRow::from_cells([Some(&b"a"[..]), None, Some(&b""[..])]);
    let cells: Vec<_> = row.cells().collect();
    assert_eq!(cells, vec![Some(b(b"a")), None, Some(b(b""))]);
    assert_eq!(row.len(), 3);
}

#[test]
fn command_complete_reports_row_counts() {
    let rows = |tag: &'static [u8]| CommandComplete { tag: b(tag) }.rows();
    assert_eq!(rows(b"SELECT 42"), Some(42));
    assert_eq!(rows(b"INSERT 0 7"), Some(7));
    assert_eq!(rows(b"CREATE TABLE"), None);
}

#[test]
fn events_follow_messages() {
    let events: Vec<_> = frontend_messages()
        .iter()
        .filter_map(frontend_event)
        .collect();
    assert!(matches!(&events[0], crate::Event::Query { text } if text == "SELECT 1; SELECT 'two'"));
    assert!(matches!(&events[1], crate::Event::Prepare { name, .. } if name == "s1"));
    assert!(matches!(&events[2], crate::Event::Execute { params, .. } if params.len() == 2));
    let events: Vec<_> = backend_messages()
        .iter()
        .filter_map(backend_event)
        .collect();
    assert!(matches!(&events[0], crate::Event::Columns { columns } if columns[1].name == "email"));
    assert!(
        matches!(&events[1], crate::Event::Row { cells } if cells[1].as_deref() == Some(&b"alice@example.com"[..]))
    );
    assert!(matches!(
        &events[3],
        crate::Event::Done { rows: Some(2), .. }
    ));
    assert!(matches!(&events[5], crate::Event::Error { code, .. } if code == "42501"));
}

#[test]
fn debug_output_hides_sql_and_values() {
    let text = format!("{:?} {:?}", frontend_messages(), backend_messages());
    assert!(!text.contains("alice@example.com"), "{text}");
    assert!(!text.contains("SELECT $1"), "{text}");
}

/// Decodes until need-more or error; every decoded message must consume
/// bytes, so a decoder can never spin on the same input.
fn assert_progress(
    buf: &mut BytesMut,
    mut decode: impl FnMut(&mut BytesMut) -> Result<bool, DecodeError>,
) -> Result<(), TestCaseError> {
    loop {
        let before = buf.len();
        match decode(buf) {
            Ok(true) => prop_assert!(buf.len() < before, "a message consumed nothing"),
            Ok(false) | Err(_) => return Ok(()),
        }
    }
}

proptest! {
    #[test]
    fn random_splits_give_the_same_messages(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let stream = backend_stream();
        let mut d = backend_decoder();
        let split = decode_chunks(split_at(&stream, &cuts), |buf| d.decode(buf)).unwrap();
        prop_assert_eq!(split, backend_messages());
        let stream = frontend_stream();
        let mut d = FrontendDecoder::new(Limits::default());
        let split = decode_chunks(split_at(&stream, &cuts), |buf| d.decode(buf)).unwrap();
        prop_assert_eq!(split, frontend_messages());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_always_progress(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        started in any::<bool>(),
    ) {
        let mut front = FrontendDecoder::new(Limits::default());
        let mut back = BackendDecoder::new(Limits::default());
        let mut buf = BytesMut::new();
        if started {
            frontend_messages()[2].encode(&mut buf);
            front.decode(&mut buf).unwrap();
        }
        buf.extend_from_slice(&bytes);
        assert_progress(&mut buf, |b| front.decode(b).map(|m| m.is_some()))?;
        let mut back_buf = BytesMut::from(&bytes[..]);
        assert_progress(&mut back_buf, |b| back.decode(b).map(|m| m.is_some()))?;
    }
}
