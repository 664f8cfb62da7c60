//! Who gets the password: tokio-postgres answers any authentication request the server
//! makes, including `AuthenticationCleartextPassword` and `AuthenticationMD5Password`,
//! which hand the password (or an MD5 of it, as good as the password to a cracker) to
//! whoever is at the other end. It has no option to refuse them, so the provider puts
//! [`AuthGuard`] between the driver and the socket: it reads the server's messages up to
//! `AuthenticationOk` and fails the read, before the driver sees the request, when the
//! server asks for either on a connection that did not verify the server. SCRAM reveals
//! nothing and passes; after `AuthenticationOk` the guard only forwards bytes.
//!
//! Two guards per connection: one on the socket, which first sees the one-byte answer to
//! `SSLRequest` ('S': TLS follows and the guard steps aside; anything else: plaintext
//! messages follow), and one on the TLS stream, installed by [`GuardedTlsConnect`], which
//! watches only when the certificate was not verified.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// `AuthenticationCleartextPassword`.
const AUTH_CLEARTEXT: u32 = 3;
/// `AuthenticationMD5Password`.
const AUTH_MD5: u32 = 5;
/// `AuthenticationOk`.
const AUTH_OK: u32 = 0;

/// A password request the guard refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRequest {
    Cleartext,
    Md5,
}

/// The error inside the `io::Error` a refused read returns; the provider finds it in the
/// driver's error chain and explains it with the target's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsafePasswordRequest {
    pub request: PasswordRequest,
    /// Whether TLS (unverified) was up, or the connection was plaintext.
    pub over_tls: bool,
}

impl UnsafePasswordRequest {
    /// The request in the protocol's words.
    pub fn describe(&self) -> &'static str {
        match self.request {
            PasswordRequest::Cleartext => {
                "the password in clear (AuthenticationCleartextPassword, pg_hba method \"password\")"
            }
            PasswordRequest::Md5 => {
                "an MD5 hash of the password (AuthenticationMD5Password, pg_hba method \"md5\"; the hash is as good as the password to whoever cracks it)"
            }
        }
    }
}

impl fmt::Display for UnsafePasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused: the server asked for {} on a connection that did not verify the server",
            self.describe()
        )
    }
}

impl std::error::Error for UnsafePasswordRequest {}

/// Where in the server's byte stream the guard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next byte answers our SSLRequest.
    SslAnswer,
    /// Backend messages before `AuthenticationOk`.
    Messages,
    /// After `AuthenticationOk`, after 'S', or on a verified channel: bytes pass unread.
    Passthrough,
}

/// The pure part of the guard: judges the server's bytes as they arrive and says how many
/// may be handed to the driver. Holds no bytes itself: a message header that is not
/// complete yet stays unjudged until more bytes come.
#[derive(Debug, Clone)]
pub struct Watch {
    state: State,
    /// Body bytes of the current message still to pass without reading them.
    skip: usize,
    over_tls: bool,
    refused: Option<UnsafePasswordRequest>,
}

impl Watch {
    /// A watch for a plaintext socket on which an SSLRequest was sent first.
    pub fn after_ssl_request() -> Watch {
        Watch::new(State::SslAnswer, false)
    }

    /// A watch for a socket on which the startup message goes first (no SSLRequest).
    pub fn plaintext() -> Watch {
        Watch::new(State::Messages, false)
    }

    /// A watch for a TLS stream whose certificate was not verified.
    pub fn unverified_tls() -> Watch {
        Watch::new(State::Messages, true)
    }

    /// No watching: a verified TLS stream, or a Unix socket.
    pub fn trusted() -> Watch {
        Watch::new(State::Passthrough, false)
    }

    fn new(state: State, over_tls: bool) -> Watch {
        Watch {
            state,
            skip: 0,
            over_tls,
            refused: None,
        }
    }

    fn passes_everything(&self) -> bool {
        self.state == State::Passthrough
    }

    /// How many bytes of `pending` (the server's bytes not yet judged, in order) may go to
    /// the driver now; an error when they hold a password request this channel must not
    /// answer. Bytes beyond the returned count are judged again once more arrive.
    pub fn judge(&mut self, pending: &[u8]) -> Result<usize, UnsafePasswordRequest> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        let mut n = 0;
        loop {
            if self.state == State::Passthrough {
                return Ok(pending.len());
            }
            if self.skip > 0 {
                let k = self.skip.min(pending.len() - n);
                n += k;
                self.skip -= k;
                if self.skip > 0 {
                    return Ok(n);
                }
                continue;
            }
            let rest = &pending[n..];
            match self.state {
                State::SslAnswer => {
                    let Some(&answer) = rest.first() else {
                        return Ok(n);
                    };
                    // 'S': TLS follows, and the TLS stream's own guard takes over.
                    self.state = if answer == b'S' {
                        State::Passthrough
                    } else {
                        State::Messages
                    };
                    n += 1;
                }
                State::Messages => {
                    if rest.len() < 5 {
                        return Ok(n);
                    }
                    let tag = rest[0];
                    let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
                    if len < 4 {
                        // Not the protocol: the driver reports it; nothing is answered.
                        self.state = State::Passthrough;
                        continue;
                    }
                    if tag == b'R' {
                        if len < 8 {
                            self.state = State::Passthrough;
                            continue;
                        }
                        if rest.len() < 9 {
                            return Ok(n);
                        }
                        let code = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
                        let request = match code {
                            AUTH_CLEARTEXT => Some(PasswordRequest::Cleartext),
                            AUTH_MD5 => Some(PasswordRequest::Md5),
                            _ => None,
                        };
                        if let Some(request) = request {
                            let refused = UnsafePasswordRequest {
                                request,
                                over_tls: self.over_tls,
                            };
                            self.refused = Some(refused);
                            return Err(refused);
                        }
                        if code == AUTH_OK {
                            // The session begins: its bytes are the driver's alone.
                            self.state = State::Passthrough;
                            return Ok(pending.len());
                        }
                    }
                    n += 5;
                    self.skip = len - 4;
                }
                State::Passthrough => unreachable!("handled above"),
            }
        }
    }
}

/// A stream that hands the driver only what its [`Watch`] has judged.
pub struct AuthGuard<S> {
    inner: S,
    watch: Watch,
    /// Read from `inner`, not yet handed over; `held[..safe]` has been judged.
    held: Vec<u8>,
    safe: usize,
}

impl<S> AuthGuard<S> {
    pub fn new(inner: S, watch: Watch) -> AuthGuard<S> {
        AuthGuard {
            inner,
            watch,
            held: Vec::new(),
            safe: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.safe > 0 {
                let k = this.safe.min(out.remaining());
                out.put_slice(&this.held[..k]);
                this.held.drain(..k);
                this.safe -= k;
                return Poll::Ready(Ok(()));
            }
            if this.watch.passes_everything() && this.held.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            let mut chunk = [0u8; 4096];
            let mut buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf))?;
            let got = buf.filled();
            if got.is_empty() {
                // End of stream inside a message: the driver reports the cut.
                this.safe = this.held.len();
                if this.safe == 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.held.extend_from_slice(got);
            let more = this
                .watch
                .judge(&this.held[this.safe..])
                .map_err(|refused| io::Error::new(io::ErrorKind::PermissionDenied, refused))?;
            this.safe += more;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: TlsStream + Unpin> TlsStream for AuthGuard<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// The driver's TLS hook with a guard on the stream it returns: watching when the
/// certificate was not verified (`prefer`, `require`), stepping aside when it was.
pub struct GuardedTlsConnect<T> {
    pub inner: T,
    pub verified: bool,
}

impl<S, T> TlsConnect<S> for GuardedTlsConnect<T>
where
    T: TlsConnect<S>,
    T::Stream: Unpin,
    T::Future: Unpin,
{
    type Stream = AuthGuard<T::Stream>;
    type Error = T::Error;
    type Future = GuardedTlsFuture<T::Future>;

    fn connect(self, stream: S) -> Self::Future {
        GuardedTlsFuture {
            inner: self.inner.connect(stream),
            verified: self.verified,
        }
    }
}

/// [`GuardedTlsConnect`]'s handshake: the inner one, then the guard around its stream.
pub struct GuardedTlsFuture<F> {
    inner: F,
    verified: bool,
}

impl<F, St, E> Future for GuardedTlsFuture<F>
where
    F: Future<Output = Result<St, E>> + Unpin,
{
    type Output = Result<AuthGuard<St>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let stream = ready!(Pin::new(&mut this.inner).poll(cx))?;
        let watch = if this.verified {
            Watch::trusted()
        } else {
            Watch::unverified_tls()
        };
        Poll::Ready(Ok(AuthGuard::new(stream, watch)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn auth(code: u32, extra: &[u8]) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(extra);
        message(b'R', &body)
    }

    /// Feeds `bytes` to a fresh watch in chunks of `step`, the way a socket might deliver
    /// them; returns how many were let through, or the refusal.
    fn feed(mut watch: Watch, bytes: &[u8], step: usize) -> Result<usize, UnsafePasswordRequest> {
        let mut safe = 0;
        let mut arrived = 0;
        while arrived < bytes.len() {
            arrived = (arrived + step).min(bytes.len());
            safe += watch.judge(&bytes[safe..arrived])?;
        }
        Ok(safe)
    }

    #[test]
    fn cleartext_and_md5_requests_are_refused_on_an_unverified_channel_whatever_the_chunking() {
        for step in [1, 2, 3, 5, 9, 1000] {
            let mut plain = b"N".to_vec();
            plain.extend(auth(AUTH_CLEARTEXT, b""));
            let e = feed(Watch::after_ssl_request(), &plain, step).unwrap_err();
            assert_eq!(e.request, PasswordRequest::Cleartext);
            assert!(!e.over_tls);

            let md5 = auth(AUTH_MD5, b"salt");
            let e = feed(Watch::unverified_tls(), &md5, step).unwrap_err();
            assert_eq!((e.request, e.over_tls), (PasswordRequest::Md5, true));

            // A notice first (and a parameter the server sends early) changes nothing.
            let mut later = message(b'N', b"SNOTICE\0\0");
            later.extend(auth(AUTH_MD5, b"salt"));
            assert!(feed(Watch::plaintext(), &later, step).is_err());
        }
    }

    #[test]
    fn no_byte_of_a_refused_request_reaches_the_driver() {
        let mut bytes = b"N".to_vec();
        bytes.extend(auth(AUTH_CLEARTEXT, b""));
        let mut watch = Watch::after_ssl_request();
        // Only the answer byte and four bytes of the header have arrived: the answer may
        // pass, the incomplete header may not.
        assert_eq!(watch.judge(&bytes[..5]).unwrap(), 1);
        assert!(watch.judge(&bytes[1..]).is_err());
        // Once refused, always refused.
        assert!(watch.judge(b"").is_err());
    }

    #[test]
    fn scram_and_the_session_after_authentication_ok_pass() {
        for step in [1, 4, 7, 1000] {
            let mut bytes = b"N".to_vec();
            bytes.extend(auth(10, b"SCRAM-SHA-256\0\0"));
            bytes.extend(auth(11, b"r=abc,s=def,i=4096"));
            bytes.extend(auth(12, b"v=xyz"));
            bytes.extend(auth(AUTH_OK, b""));
            // After AuthenticationOk anything goes, even bytes that look like a request.
            bytes.extend(auth(AUTH_CLEARTEXT, b""));
            bytes.extend(message(b'Z', b"I"));
            assert_eq!(
                feed(Watch::after_ssl_request(), &bytes, step).unwrap(),
                bytes.len()
            );
        }
    }

    #[test]
    fn an_error_response_passes_so_the_driver_can_report_it() {
        let bytes = message(b'E', b"SFATAL\0C28P01\0Mpassword authentication failed\0\0");
        assert_eq!(feed(Watch::plaintext(), &bytes, 3).unwrap(), bytes.len());
    }

    #[test]
    fn ssl_yes_hands_over_to_the_tls_stream_and_trusted_channels_pass_everything() {
        let mut bytes = b"S".to_vec();
        bytes.extend_from_slice(&[0x16, 0x03, 0x03, 0x00, 0x7a]);
        assert_eq!(
            feed(Watch::after_ssl_request(), &bytes, 2).unwrap(),
            bytes.len()
        );
        let md5 = auth(AUTH_MD5, b"salt");
        assert_eq!(feed(Watch::trusted(), &md5, 1).unwrap(), md5.len());
    }
}
