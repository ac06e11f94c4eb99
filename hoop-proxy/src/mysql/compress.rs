//! The client leg's compressed protocol (CLIENT_COMPRESS, zlib).
//!
//! hoop terminates each leg's login itself, so each leg negotiates
//! compression on its own: a client that asks for it gets it, and the server
//! leg stays plain. Client frames are inflated before [`MysqlCodec`] sees a
//! byte, so statements are judged and rows masked on the real packets; what
//! goes back to the client is deflated after the codec rewrote it.
//!
//! [`MysqlCodec`]: super::codec::MysqlCodec

use bytes::BytesMut;
use hoop_wire::mysql::{Decompressor, compress_frames, encode_packet};

use crate::error::SessionError;
use crate::relay::RelayCodec;

/// One client's compressed framing: kept across the relay's runs (a
/// COM_CHANGE_USER stops and restarts it).
#[derive(Debug, Default)]
pub(crate) struct ClientCompression {
    reader: Decompressor,
    /// Inflated client bytes the codec has not decoded yet (a packet may
    /// span frames). The codec's packet cap bounds them.
    plain: BytesMut,
    /// The compressed sequence id of hoop's next frame to the client: one
    /// past the client's last frame, as a server numbers its answer.
    next_seq: u8,
    scratch: Vec<u8>,
}

impl ClientCompression {
    /// Frames `plain` (packet bytes) for the client.
    pub(crate) fn frame(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() / 2 + 16);
        self.next_seq = compress_frames(&mut out, self.next_seq, plain);
        out
    }

    /// One packet of hoop's own (an ERR, an OK) with sequence id `seq`,
    /// framed for the client.
    pub(crate) fn frame_packet(&mut self, seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut packet = BytesMut::new();
        encode_packet(&mut packet, seq, payload);
        self.frame(&packet)
    }
}

/// A relay codec whose client side speaks the compressed protocol.
pub(crate) struct Compressed<'a, C> {
    pub(crate) inner: &'a mut C,
    pub(crate) state: &'a mut ClientCompression,
}

impl<C: RelayCodec<Error = SessionError>> Compressed<'_, C> {
    fn deflate_into(&mut self, output: &mut Vec<u8>) {
        if self.state.scratch.is_empty() {
            return;
        }
        let plain = std::mem::take(&mut self.state.scratch);
        self.state.next_seq = compress_frames(output, self.state.next_seq, &plain);
        self.state.scratch = plain;
        self.state.scratch.clear();
    }
}

impl<C: RelayCodec<Error = SessionError>> RelayCodec for Compressed<'_, C> {
    type Error = SessionError;

    fn client_bytes(
        &mut self,
        input: &mut BytesMut,
        output: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        while let Some((seq, bytes)) = self
            .state
            .reader
            .next_frame(input)
            .map_err(SessionError::client_protocol)?
        {
            self.state.next_seq = seq.wrapping_add(1);
            self.state.plain.extend_from_slice(&bytes);
        }
        self.inner.client_bytes(&mut self.state.plain, output)
    }

    fn server_bytes(
        &mut self,
        input: &mut BytesMut,
        output: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        self.state.scratch.clear();
        let result = self.inner.server_bytes(input, &mut self.state.scratch);
        self.deflate_into(output);
        result
    }

    fn client_replies(&mut self, output: &mut Vec<u8>) {
        self.state.scratch.clear();
        self.inner.client_replies(&mut self.state.scratch);
        self.deflate_into(output);
    }

    fn closed(&mut self, from_client: bool, pending: usize) -> Result<(), SessionError> {
        let held = if from_client {
            self.state.plain.len()
        } else {
            0
        };
        self.inner.closed(from_client, pending + held)
    }
}
