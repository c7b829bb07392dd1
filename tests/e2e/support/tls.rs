//! A private certificate authority made with the `openssl` command: a server certificate for
//! `127.0.0.1` and a client certificate, both signed by it, for the remote TLS scenarios.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// PEM texts of the authority and the certificates it signed.
pub struct Pki {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Signs a new key's certificate with the authority in `dir`.
fn issue(dir: &Path, name: &str, subject: &str, extensions: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), extensions).expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

impl Pki {
    pub fn generate() -> Pki {
        let dir = tempfile::tempdir().expect("a directory for the certificates");
        let path = dir.path();
        openssl(
            path,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Granary test CA",
            ],
        );
        issue(
            path,
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        );
        issue(
            path,
            "client",
            "/CN=granary",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        let read = |name: &str| std::fs::read_to_string(path.join(name)).expect("read a PEM file");
        Pki {
            ca_cert: read("ca.pem"),
            server_cert: read("server.pem"),
            server_key: read("server.key"),
            client_cert: read("client.pem"),
            client_key: read("client.key"),
        }
    }

    /// A server configuration presenting the server certificate and requiring a client
    /// certificate signed by the authority.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_cert.as_bytes()) {
            roots
                .add(cert.expect("CA certificate"))
                .expect("trust the CA");
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .expect("client verifier");
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.server_cert.as_bytes())
                .map(|cert| cert.expect("server certificate"))
                .collect();
        let key = PrivateKeyDer::from_pem_slice(self.server_key.as_bytes()).expect("server key");
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("server certificate and key");
        // HTTP/2 where the client offers it, as public registries and CDNs answer.
        let mut config = config;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}
