//! A certificate authority made for one test run with the `openssl` command: a CA
//! certificate and server certificates it signs, in a temp dir that is removed on drop.
//! Tests trust it explicitly; nothing here weakens verification.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::TempDir;

pub struct PrivateCa {
    dir: TempDir,
    pub cert: PathBuf,
    key: PathBuf,
}

/// A server certificate and its unencrypted PKCS#8 key, both PEM.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (it makes the test CA; install it with apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivateCa {
    /// A new CA named `name`, valid for two days.
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new("ca");
        let (cert, key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        PrivateCa { dir, cert, key }
    }

    /// A server certificate for `sans` (e.g. `DNS:localhost,IP:127.0.0.1`), file names
    /// starting with `stem`.
    pub fn issue(&self, stem: &str, sans: &str) -> Issued {
        let d = self.dir.path();
        let (key, csr, cert, ext) = (
            format!("{stem}.key"),
            format!("{stem}.csr"),
            format!("{stem}.pem"),
            format!("{stem}.ext"),
        );
        std::fs::write(
            d.join(&ext),
            format!(
                "subjectAltName={sans}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={stem}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                path_str(&self.cert),
                "-CAkey",
                path_str(&self.key),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        );
        Issued {
            cert: d.join(cert),
            key: d.join(key),
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}
