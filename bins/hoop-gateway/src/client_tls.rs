//! TLS on the native client listeners: the person's access token is the
//! client's password, so it must not cross a network in clear text.
//!
//! With a certificate (`--tls-cert`, `--tls-key`), both listeners offer TLS
//! (PostgreSQL answers SSLRequest with `S`, MySQL's greeting offers
//! CLIENT_SSL) and refuse a plain-text login from any address but loopback
//! before asking for the token; loopback stays open to plain text, which
//! never leaves the machine (local tools, `hoop connect`'s clients).
//! Without a certificate the listeners speak plain text to everyone.

use std::net::IpAddr;

/// What a PostgreSQL client refused by [`refuses_plain_text`] reads.
pub(crate) const POSTGRES_REFUSAL: &str =
    "this gateway requires TLS for clients not on loopback; connect with sslmode=require";

/// What a MySQL client refused by [`refuses_plain_text`] reads.
pub(crate) const MYSQL_REFUSAL: &str =
    "this gateway requires TLS for clients not on loopback; connect with --ssl";

/// Whether a client at `peer` that logs in without TLS (`encrypted` false)
/// must be refused before it sends its token: only when the gateway has a
/// certificate to offer and the client is not on loopback. An IPv4 address
/// mapped into IPv6 (`::ffff:127.0.0.1`, what a dual-stack listener
/// reports) counts as the IPv4 address it carries.
pub(crate) fn refuses_plain_text(has_certificate: bool, encrypted: bool, peer: IpAddr) -> bool {
    has_certificate && !encrypted && !peer.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_refused_only_off_loopback_with_a_certificate() {
        struct Case {
            peer: &'static str,
            loopback: bool,
        }
        let cases = [
            Case {
                peer: "127.0.0.1",
                loopback: true,
            },
            Case {
                peer: "127.10.20.30",
                loopback: true,
            },
            Case {
                peer: "::1",
                loopback: true,
            },
            Case {
                peer: "::ffff:127.0.0.1",
                loopback: true,
            },
            Case {
                peer: "192.0.2.2",
                loopback: false,
            },
            Case {
                peer: "10.0.0.1",
                loopback: false,
            },
            Case {
                peer: "0.0.0.0",
                loopback: false,
            },
            Case {
                peer: "fd00::2",
                loopback: false,
            },
            Case {
                peer: "fe80::1",
                loopback: false,
            },
            Case {
                peer: "::ffff:192.0.2.2",
                loopback: false,
            },
            // IPv4-compatible (deprecated), not mapped: not loopback.
            Case {
                peer: "::127.0.0.1",
                loopback: false,
            },
        ];
        for case in cases {
            let peer: IpAddr = case.peer.parse().unwrap();
            assert_eq!(
                refuses_plain_text(true, false, peer),
                !case.loopback,
                "{}",
                case.peer
            );
            assert!(!refuses_plain_text(true, true, peer), "{}", case.peer);
            assert!(!refuses_plain_text(false, false, peer), "{}", case.peer);
        }
    }
}
