//! The MySQL client/server protocol's framing, shared by MySQL and MariaDB: packets of up
//! to 16 MiB - 1 with a sequence number, length-encoded integers and strings, and the
//! transport under them (TCP, TLS over TCP, or the server's Unix socket). Pure framing:
//! what a packet means is decided in `client.rs` and `auth.rs`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use rustls::{ClientConnection, StreamOwned};

/// The largest payload one packet carries; a longer one continues in the next packet.
const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// A packet bigger than this is refused: nothing the agent reads comes near it, and a
/// server (or a peer pretending to be one) must not make it allocate without bound.
const MAX_MESSAGE: usize = 64 << 20;

/// What the packets travel over.
pub enum Transport {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Unix(UnixStream),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
            Transport::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
            Transport::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
            Transport::Unix(s) => s.flush(),
        }
    }
}

/// Packets over a transport, with the sequence number the protocol checks.
pub struct Framed {
    pub transport: Transport,
    seq: u8,
}

impl Framed {
    pub fn new(transport: Transport) -> Framed {
        Framed::with_sequence(transport, 0)
    }

    /// Continues a sequence begun on another transport (TLS after the SSLRequest).
    pub fn with_sequence(transport: Transport, seq: u8) -> Framed {
        Framed { transport, seq }
    }

    pub fn into_parts(self) -> (Transport, u8) {
        (self.transport, self.seq)
    }

    /// A new command starts a new sequence.
    pub fn reset_sequence(&mut self) {
        self.seq = 0;
    }

    /// Reads one logical packet (joining continuation packets).
    pub fn read_packet(&mut self) -> io::Result<Vec<u8>> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            self.transport.read_exact(&mut header)?;
            let len =
                usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            // A server that ends a session on its own (init_connect failed, the
            // connection was killed) sends its error out of sequence: the error matters
            // more than the number.
            let out_of_order = header[3] != self.seq;
            let due = self.seq;
            self.seq = header[3].wrapping_add(1);
            if payload.len() + len > MAX_MESSAGE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server sent a packet larger than 64 MiB",
                ));
            }
            let start = payload.len();
            payload.resize(start + len, 0);
            self.transport.read_exact(&mut payload[start..])?;
            if out_of_order && !(start == 0 && payload.first() == Some(&0xFF)) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "packet out of order (sequence {} where {due} was due)",
                        header[3]
                    ),
                ));
            }
            if len < MAX_PAYLOAD {
                return Ok(payload);
            }
        }
    }

    /// Writes one logical packet (split into continuation packets when it is long).
    pub fn write_packet(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        let mut rest = payload;
        loop {
            // A payload of an exact multiple of the maximum ends with an empty packet.
            let n = rest.len().min(MAX_PAYLOAD);
            self.push_header(&mut out, n);
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < MAX_PAYLOAD {
                break;
            }
        }
        self.transport.write_all(&out)?;
        self.transport.flush()
    }

    fn push_header(&mut self, out: &mut Vec<u8>, len: usize) {
        out.extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq]);
        self.seq = self.seq.wrapping_add(1);
    }
}

/// A cursor over a packet's payload; every read fails cleanly on a short packet.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(short());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Bytes up to a NUL (consumed, not returned); the rest when there is no NUL.
    pub fn nul_terminated(&mut self) -> &'a [u8] {
        match self.bytes.iter().position(|&b| b == 0) {
            Some(i) => {
                let s = &self.bytes[..i];
                self.bytes = &self.bytes[i + 1..];
                s
            }
            None => self.rest(),
        }
    }

    /// A length-encoded integer; `None` for the 0xFB that stands for SQL NULL in a row.
    pub fn lenenc_int(&mut self) -> io::Result<Option<u64>> {
        Ok(match self.u8()? {
            n @ 0..=0xFA => Some(u64::from(n)),
            0xFB => None,
            0xFC => Some(u64::from(self.u16()?)),
            0xFD => {
                let b = self.take(3)?;
                Some(u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16)
            }
            0xFE => {
                let b = self.take(8)?;
                Some(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            0xFF => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "0xFF is not a length-encoded integer",
                ));
            }
        })
    }

    /// A length-encoded string; `None` for SQL NULL.
    pub fn lenenc_bytes(&mut self) -> io::Result<Option<&'a [u8]>> {
        match self.lenenc_int()? {
            None => Ok(None),
            Some(n) => {
                let n = usize::try_from(n).map_err(|_| short())?;
                self.take(n).map(Some)
            }
        }
    }
}

fn short() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the server sent a packet shorter than its contents say",
    )
}

/// Appends `n` as a length-encoded integer.
pub fn put_lenenc_int(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xFA => out.push(n as u8),
        0xFB..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encoded_integers_round_trip_at_every_width() {
        for n in [
            0u64,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, n);
            let mut r = Reader::new(&out);
            assert_eq!(r.lenenc_int().unwrap(), Some(n), "{n}");
            assert!(r.is_empty());
        }
        assert_eq!(Reader::new(&[0xFB]).lenenc_int().unwrap(), None);
        assert!(Reader::new(&[0xFC, 1]).lenenc_int().is_err());
        assert!(Reader::new(&[3, b'a']).lenenc_bytes().is_err());
        let mut r = Reader::new(b"abc\0rest");
        assert_eq!(r.nul_terminated(), b"abc");
        assert_eq!(r.rest(), b"rest");
    }

    #[test]
    fn long_payloads_are_split_and_joined_with_sequence_numbers() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut writer = Framed::new(Transport::Unix(a));
        let mut reader = Framed::new(Transport::Unix(b));
        let big: Vec<u8> = (0..MAX_PAYLOAD + 10).map(|i| i as u8).collect();
        let exact = vec![7u8; MAX_PAYLOAD];
        let t = std::thread::spawn(move || {
            writer.write_packet(b"").unwrap();
            writer.write_packet(&big).unwrap();
            writer.write_packet(&exact).unwrap();
            writer.write_packet(b"after").unwrap();
        });
        assert_eq!(reader.read_packet().unwrap(), b"");
        let got = reader.read_packet().unwrap();
        assert_eq!(got.len(), MAX_PAYLOAD + 10);
        assert!(got.iter().enumerate().all(|(i, &b)| b == i as u8));
        assert_eq!(reader.read_packet().unwrap().len(), MAX_PAYLOAD);
        assert_eq!(reader.read_packet().unwrap(), b"after");
        t.join().unwrap();
    }

    #[test]
    fn a_packet_out_of_sequence_is_an_error_unless_it_is_the_servers_error() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[1, 0, 0, 5, b'x']).unwrap();
        let mut reader = Framed::new(Transport::Unix(b));
        let e = reader.read_packet().unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[3, 0, 0, 9, 0xFF, 0x10, 0x04]).unwrap();
        let mut reader = Framed::new(Transport::Unix(b));
        assert_eq!(reader.read_packet().unwrap(), [0xFF, 0x10, 0x04]);
    }
}
