//! The connection's socket, opened by the provider rather than the driver so that the
//! [`super::auth_guard::AuthGuard`] can sit between them (the driver's own `connect` owns
//! its socket). TCP with keepalives and a TCP user timeout, or the server's Unix socket when
//! the host is a directory (`/var/run/postgresql`), as libpq reads such a host. The caller
//! bounds the whole connect with the connect timeout.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A connected socket to the server.
pub enum PgSocket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Whether `host` names the directory of a Unix socket rather than a machine.
pub fn is_unix_socket_dir(host: &str) -> bool {
    host.starts_with('/')
}

impl PgSocket {
    /// Connects to `host:port` (each address the name resolves to, in turn), or to the
    /// socket `host/.s.PGSQL.port` when `host` is a directory.
    pub async fn open(host: &str, port: u16, user_timeout: Duration) -> io::Result<PgSocket> {
        if is_unix_socket_dir(host) {
            let path = std::path::Path::new(host).join(format!(".s.PGSQL.{port}"));
            return Ok(PgSocket::Unix(UnixStream::connect(path).await?));
        }
        let mut last = None;
        for addr in tokio::net::lookup_host((host, port)).await? {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let sock = SockRef::from(&stream);
                    sock.set_tcp_keepalive(
                        &TcpKeepalive::new().with_time(Duration::from_secs(10)),
                    )?;
                    sock.set_tcp_user_timeout(Some(user_timeout))?;
                    return Ok(PgSocket::Tcp(stream));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
        }))
    }
}

impl AsyncRead for PgSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgSocket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            PgSocket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PgSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PgSocket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            PgSocket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgSocket::Tcp(s) => Pin::new(s).poll_flush(cx),
            PgSocket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PgSocket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            PgSocket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
