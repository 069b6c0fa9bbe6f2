//! https: a local certificate authority that gcemu creates at first start and keeps in the data
//! dir (`tls/ca.pem`, `tls/ca-key.pem`), server certificates it issues, and the rustls server
//! configuration (HTTP/2 and HTTP/1.1 by ALPN).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CA_FILE: &str = "tls/ca.pem";
const CA_KEY_FILE: &str = "tls/ca-key.pem";
/// The CA's subject. Kept constant: server certificates name it as their issuer.
const CA_COMMON_NAME: &str = "gcemu local CA";
const CA_ORGANIZATION: &str = "gcemu (Graph connectors emulator)";

/// The names every server certificate covers, before `--tls-san`.
pub const DEFAULT_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// gcemu's certificate authority: its certificate (what clients trust) and its key.
pub struct LocalCa {
    pub cert_pem: String,
    issuer: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    name.push(DnType::OrganizationName, CA_ORGANIZATION);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    Ok(params)
}

impl LocalCa {
    /// The CA kept in `data_dir`, created there at first use; with no data dir, one CA per process.
    pub fn load_or_create(data_dir: Option<&Path>) -> anyhow::Result<Arc<LocalCa>> {
        match data_dir {
            Some(dir) => Ok(Arc::new(load_or_create_in(dir)?)),
            None => {
                static PROCESS_CA: OnceLock<Arc<LocalCa>> = OnceLock::new();
                if let Some(ca) = PROCESS_CA.get() {
                    return Ok(ca.clone());
                }
                let key = KeyPair::generate()?;
                let ca = Arc::new(LocalCa::from_key(key, None)?);
                Ok(PROCESS_CA.get_or_init(|| ca).clone())
            }
        }
    }

    /// The CA for `key`; `cert_pem` is the certificate clients already trust, if any.
    fn from_key(key: KeyPair, cert_pem: Option<String>) -> anyhow::Result<LocalCa> {
        // The issuer is rebuilt from the constant subject and the kept key: certificates it
        // signs verify against the kept certificate, which has that subject and key.
        let issuer = ca_params()?.self_signed(&key)?;
        let cert_pem = cert_pem.unwrap_or_else(|| issuer.pem());
        Ok(LocalCa {
            cert_pem,
            issuer,
            key,
        })
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid for a year, and its key.
    pub fn issue(
        &self,
        names: &[String],
    ) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let mut params = CertificateParams::new(names.to_vec())
            .with_context(|| format!("a certificate for {}", names.join(", ")))?;
        let mut subject = DistinguishedName::new();
        subject.push(
            DnType::CommonName,
            names.first().map(String::as_str).unwrap_or("localhost"),
        );
        params.distinguished_name = subject;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time_now();
        params.not_before = now - rcgen_days(1);
        params.not_after = now + rcgen_days(365);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer, &self.key)?;
        let ca_der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .context("reading the CA certificate")?;
        Ok((
            vec![cert.der().clone(), ca_der],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        ))
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rcgen_days(days: i64) -> time::Duration {
    time::Duration::days(days)
}

fn load_or_create_in(data_dir: &Path) -> anyhow::Result<LocalCa> {
    let (cert_path, key_path) = (data_dir.join(CA_FILE), data_dir.join(CA_KEY_FILE));
    // The key decides: whoever creates the key file first also writes the certificate, which
    // the others wait a moment for.
    if !key_path.exists() {
        let key = KeyPair::generate()?;
        let ca = LocalCa::from_key(key, None)?;
        if super::create_private_file(&key_path, ca.key.serialize_pem().as_bytes())? {
            super::create_private_file(&cert_path, ca.cert_pem.as_bytes())?;
            return Ok(ca);
        }
    }
    let key_pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let key = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("reading the CA key {}", key_path.display()))?;
    let mut waited = 0;
    let cert_pem = loop {
        match std::fs::read_to_string(&cert_path) {
            Ok(pem) => break pem,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && waited < 50 => {
                waited += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // A key without its certificate (an interrupted first start): certify the key anew.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let ca = LocalCa::from_key(key, None)?;
                super::create_private_file(&cert_path, ca.cert_pem.as_bytes())?;
                return load_or_create_in(data_dir);
            }
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", cert_path.display()))
            }
        }
    };
    LocalCa::from_key(key, Some(cert_pem))
}

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// Issued by gcemu's CA for the default names and these extra ones (`--tls-san`).
    LocalCa { extra_names: Vec<String> },
    /// The user's own (`--tls-cert`, `--tls-key`): PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

/// A rustls server configuration offering HTTP/2 and HTTP/1.1.
pub fn server_config(
    source: &CertificateSource,
    ca: Option<&LocalCa>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let (chain, key) = match source {
        CertificateSource::LocalCa { extra_names } => {
            let ca = ca.context("gcemu's CA is needed to issue the server certificate")?;
            let mut names: Vec<String> = DEFAULT_NAMES.iter().map(|n| n.to_string()).collect();
            for name in extra_names {
                if !names.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                    names.push(name.clone());
                }
            }
            ca.issue(&names)?
        }
        CertificateSource::Files { cert, key } => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("reading the certificate {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("reading the certificate {}", cert.display()))?;
            if chain.is_empty() {
                anyhow::bail!("{} holds no PEM certificate", cert.display());
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("reading the private key {}", key.display()))?;
            (chain, key)
        }
    };
    config_for(chain, key)
}

/// A server configuration gcemu's CA issues for `names` (the proxy's per-host certificates).
pub fn config_for_names(ca: &LocalCa, names: &[String]) -> anyhow::Result<Arc<ServerConfig>> {
    let (chain, key) = ca.issue(names)?;
    config_for(chain, key)
}

fn config_for(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the server certificate and key do not go together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_kept_and_its_certificates_verify_against_the_kept_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalCa::load_or_create(Some(dir.path())).unwrap();
        let again = LocalCa::load_or_create(Some(dir.path())).unwrap();
        assert_eq!(first.cert_pem, again.cert_pem);
        let (chain, _) = again
            .issue(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let ca_der = CertificateDer::from_pem_slice(first.cert_pem.as_bytes()).unwrap();
        let anchor = webpki::anchor_from_trusted_cert(&ca_der).unwrap();
        let leaf = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
        let now = rustls_pki_types::UnixTime::now();
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .unwrap();
        let ip = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        leaf.verify_is_valid_for_subject_name(&ip).unwrap();
        assert!(server_config(
            &CertificateSource::LocalCa {
                extra_names: vec!["gcemu.test".into()]
            },
            Some(&again)
        )
        .is_ok());
    }
}
