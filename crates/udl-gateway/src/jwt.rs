//! End-user tokens: compact JWS signed by the platform's auth service with EdDSA (Ed25519) or
//! ES256 (P-256), checked against a JWK set from a file. Only those two algorithms exist here,
//! so neither `none` nor an HMAC-with-the-public-key confusion can be asked for.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_FIXED, ED25519};
use serde::Deserialize;
use sha2::Digest as _;
use udl::{Error, ErrorKind, Result};

/// What a valid token says about its holder.
#[derive(Clone, Debug, Deserialize)]
pub struct Claims {
    /// The end user (becomes the actor id).
    pub sub: String,
    /// Their roles (`clinician`, `patient`, ...).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The token's id, checked against the revocation list.
    pub jti: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Not before, if set.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Issuer.
    pub iss: String,
    /// Audience: one or several.
    pub aud: Audience,
    /// Emergency (break-glass) access was granted to this token explicitly.
    #[serde(default)]
    pub break_glass: bool,
}

/// `aud` as one string or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    kid: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// One public key of the set.
struct Key {
    kid: Option<String>,
    alg: &'static str,
    public: Vec<u8>,
}

/// Tokens whose signature was verified, by digest, at most this many.
const VERIFIED_CAPACITY: u64 = 10_000;
/// How long a verification is reused (expiry is still checked on each use).
const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Checks end-user tokens.
pub struct JwtVerifier {
    keys: Vec<Key>,
    verified: moka::sync::Cache<[u8; 32], Claims>,
    issuer: String,
    audience: String,
    leeway: i64,
    max_lifetime: i64,
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message.into()).with_operation("gateway.jwt")
}

fn refused(why: &'static str) -> Error {
    Error::new(ErrorKind::PermissionDenied, why)
}

impl JwtVerifier {
    /// A verifier for the JWK set in `keys_file`.
    pub fn from_file(config: &udl::config::JwtConfig) -> Result<Self> {
        let text = std::fs::read_to_string(&config.keys_file).map_err(|e| {
            config_error(format!("cannot read gateway.jwt.keys_file: {}", e.kind()))
        })?;
        Self::new(&text, config)
    }

    /// A verifier for the JWK set `jwks` (JSON).
    pub fn new(jwks: &str, config: &udl::config::JwtConfig) -> Result<Self> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|_| {
            config_error("gateway.jwt.keys_file is not a JWK set ({\"keys\": [...]})")
        })?;
        let keys = set
            .keys
            .into_iter()
            .map(Key::from_jwk)
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Err(config_error("gateway.jwt.keys_file holds no key"));
        }
        Ok(JwtVerifier {
            keys,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(VERIFIED_FOR)
                .build(),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: seconds(config.leeway),
            max_lifetime: seconds(config.max_lifetime),
        })
    }

    /// The claims of `token` when its signature, issuer, audience and times hold at `now`
    /// (seconds since the epoch); `PermissionDenied` naming the reason otherwise. Revocation
    /// is the caller's next check. A token verified in the last minute is not verified again,
    /// only its times are.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims> {
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            self.check_times(&claims, now)?;
            return Ok(claims);
        }
        let claims = self.verify_signed(token, now)?;
        self.verified.insert(digest, claims.clone());
        Ok(claims)
    }

    fn check_times(&self, claims: &Claims, now: i64) -> Result<()> {
        if claims.exp + self.leeway <= now {
            return Err(refused("the token has expired"));
        }
        if claims.nbf.is_some_and(|nbf| nbf - self.leeway > now) || claims.iat - self.leeway > now {
            return Err(refused("the token is not valid yet"));
        }
        Ok(())
    }

    fn verify_signed(&self, token: &str, now: i64) -> Result<Claims> {
        let mut parts = token.splitn(3, '.');
        let (Some(header), Some(payload), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(refused("the token is not a compact JWS"));
        };
        let header: Header = decode_json(header)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.alg == header.alg && (header.kid.is_none() || k.kid == header.kid))
            .ok_or_else(|| refused("the token is signed with an unknown key or algorithm"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| refused("the token's signature is not base64url"))?;
        let signed = &token[..header_len(token, payload)];
        key.verify(signed.as_bytes(), &signature)?;
        let claims: Claims = decode_json(payload)?;
        if claims.iss != self.issuer {
            return Err(refused("the token comes from another issuer"));
        }
        if !claims.aud.contains(&self.audience) {
            return Err(refused("the token is meant for another audience"));
        }
        if claims.exp + self.leeway <= now {
            return Err(refused("the token has expired"));
        }
        if claims.nbf.is_some_and(|nbf| nbf - self.leeway > now) || claims.iat - self.leeway > now {
            return Err(refused("the token is not valid yet"));
        }
        if claims.exp - claims.iat > self.max_lifetime {
            return Err(refused(
                "the token lives longer than gateway.jwt.max_lifetime",
            ));
        }
        if claims.sub.is_empty() || claims.jti.is_empty() {
            return Err(refused("the token has no sub or jti"));
        }
        Ok(claims)
    }
}

/// Length of `header.payload`, the signed part.
fn header_len(token: &str, payload: &str) -> usize {
    token.find('.').map_or(0, |dot| dot + 1 + payload.len())
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| refused("the token is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| refused("the token's header or claims are malformed"))
}

impl Key {
    fn from_jwk(jwk: Jwk) -> Result<Self> {
        let bytes = |coordinate: Option<String>| -> Result<Vec<u8>> {
            URL_SAFE_NO_PAD
                .decode(coordinate.unwrap_or_default())
                .map_err(|_| config_error("a JWK coordinate is not base64url"))
        };
        match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => {
                let x = bytes(jwk.x)?;
                if x.len() != 32 {
                    return Err(config_error("an Ed25519 JWK needs a 32-byte x"));
                }
                Ok(Key {
                    kid: jwk.kid,
                    alg: "EdDSA",
                    public: x,
                })
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (bytes(jwk.x)?, bytes(jwk.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(config_error("a P-256 JWK needs 32-byte x and y"));
                }
                // Uncompressed SEC1 point, as ring reads it.
                let mut public = vec![4];
                public.extend_from_slice(&x);
                public.extend_from_slice(&y);
                Ok(Key {
                    kid: jwk.kid,
                    alg: "ES256",
                    public,
                })
            }
            _ => Err(config_error(
                "gateway.jwt keys must be Ed25519 (OKP) or P-256 (EC) public keys",
            )),
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        let algorithm: &dyn VerificationAlgorithm = match self.alg {
            "EdDSA" => &ED25519,
            _ => &ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(algorithm, &self.public)
            .verify(message, signature)
            .map_err(|_| refused("the token's signature does not verify"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn config() -> udl::config::JwtConfig {
        udl::config::JwtConfig {
            keys_file: "unused".into(),
            issuer: "fake-auth".into(),
            audience: "udl".into(),
            leeway: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(900),
        }
    }

    fn signed(pair: &Ed25519KeyPair, claims: serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()));
        format!("{input}.{signature}")
    }

    #[test]
    fn tokens_are_checked_for_signature_issuer_audience_and_time() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let jwks = format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"{x}"}}]}}"#);
        let verifier = JwtVerifier::new(&jwks, &config()).unwrap();
        let claims = |exp: i64, iss: &str| {
            serde_json::json!({"sub": "fake-clinician", "roles": ["clinician"], "jti": "j1",
                "iat": 1000, "exp": exp, "iss": iss, "aud": ["udl"]})
        };
        let good = signed(&pair, claims(1600, "fake-auth"));
        assert_eq!(verifier.verify(&good, 1100).unwrap().sub, "fake-clinician");
        assert!(verifier.verify(&good, 1700).is_err(), "expired");
        let other_issuer = signed(&pair, claims(1600, "elsewhere"));
        assert!(verifier.verify(&other_issuer, 1100).is_err());
        let too_long = signed(&pair, claims(100_000, "fake-auth"));
        assert!(verifier.verify(&too_long, 1100).is_err());
        let mut tampered = good.clone();
        tampered.insert(good.find('.').unwrap() + 3, 'A');
        assert!(verifier.verify(&tampered, 1100).is_err());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims(1600, "fake-auth").to_string())
        );
        assert!(verifier.verify(&none, 1100).is_err());
    }

    #[test]
    fn es256_tokens_verify_against_their_p256_key() {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // Uncompressed point: 0x04, then x and y.
        let point = pair.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..]),
        );
        let jwks =
            format!(r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"e1","x":"{x}","y":"{y}"}}]}}"#);
        let verifier = JwtVerifier::new(&jwks, &config()).unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"e1"}"#);
        let claims = serde_json::json!({"sub": "fake-patient", "roles": ["patient"], "jti": "j2",
            "iat": 1000, "exp": 1600, "iss": "fake-auth", "aud": "udl"});
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = pair.sign(&rng, input.as_bytes()).unwrap();
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
        assert_eq!(verifier.verify(&token, 1100).unwrap().sub, "fake-patient");
        // The same claims under an EdDSA header find no key: algorithms are not interchangeable.
        let confused = token.replacen(
            &header,
            &URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"e1"}"#),
            1,
        );
        assert!(verifier.verify(&confused, 1100).is_err());
    }
}
