//! RS256 signing with aws-lc-rs, and the instance's JWKS.

use std::sync::{Arc, OnceLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::error::SetupError;

/// Token category (`cat` header) of session tokens.
pub const CAT_SESSION: &str = "cl_B7d4PD111AAA";
/// Token category of JWT-template tokens.
pub const CAT_TEMPLATE: &str = "cl_B7d4PD222AAA";
/// Token category of M2M tokens.
pub const CAT_M2M: &str = "cl_B7d4PD333AAA";

/// An RSA signing key.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

impl SigningKey {
    /// A new random 2048-bit key.
    pub fn generate() -> Self {
        // Key generation only fails if the system RNG does; nothing useful can continue then.
        #[allow(clippy::expect_used)]
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        Self {
            pair: Arc::new(pair),
        }
    }

    /// One key shared by every mock in this process (generating RSA keys is slow-ish).
    pub fn shared() -> Self {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(Self::generate).clone()
    }

    /// From PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, SetupError> {
        RsaKeyPair::from_pkcs8(der)
            .map(|pair| Self {
                pair: Arc::new(pair),
            })
            .map_err(|e| SetupError::SigningKey(format!("invalid PKCS#8 RSA key: {e}")))
    }

    /// From a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, SetupError> {
        let b64: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|e| SetupError::SigningKey(format!("signing key PEM is not base64: {e}")))?;
        Self::from_pkcs8(&der)
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`, SPKI), as Clerk's dashboard shows it
    /// for `CLERK_JWT_KEY`.
    pub fn public_key_pem(&self) -> String {
        #[allow(clippy::expect_used)]
        let der = self.pair.public_key().as_der().expect("public key DER");
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// The public key as a JWK with `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        let public = self.pair.public_key();
        json!({
            "use": "sig",
            "kty": "RSA",
            "kid": kid,
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// Signs `header.payload` with the algorithm named in `header.alg` (RS256/384/512; anything
    /// else is signed RS256 so that tests can present a mislabelled token).
    pub fn sign(&self, header: &Value, payload: &Value) -> String {
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some("RS384") => &signature::RSA_PKCS1_SHA384,
            Some("RS512") => &signature::RSA_PKCS1_SHA512,
            _ => &signature::RSA_PKCS1_SHA256,
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        #[allow(clippy::expect_used)]
        self.pair
            .sign(
                alg,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// HS256 over `header.payload` with `secret` (for algorithm-confusion tests).
pub fn sign_hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// An unsigned token (`alg: none`, empty signature).
pub fn unsigned(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}
