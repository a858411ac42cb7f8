//! A stand-in for the platform's auth service, for `udl demo`, tests and local development: a
//! fresh Ed25519 key, its public JWK set, and tokens signed with it. Production tokens come
//! from the real auth service; this key lives only in memory.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;
use udl::{Error, ErrorKind, Result};

/// Issues end-user tokens the way the platform's auth service would.
pub struct DevIssuer {
    pair: Ed25519KeyPair,
    kid: String,
    issuer: String,
    audience: String,
}

/// What a token says beyond the defaults (`sub`, roles, lifetime).
#[derive(Clone, Debug)]
pub struct TokenRequest<'a> {
    /// The end user.
    pub sub: &'a str,
    /// Their roles.
    pub roles: &'a [&'a str],
    /// Seconds until it expires (negative: already expired).
    pub lifetime_secs: i64,
    /// Whether break-glass (emergency) access is granted.
    pub break_glass: bool,
}

impl<'a> TokenRequest<'a> {
    /// A five-minute token for `sub` with `roles`.
    pub fn new(sub: &'a str, roles: &'a [&'a str]) -> Self {
        TokenRequest {
            sub,
            roles,
            lifetime_secs: 300,
            break_glass: false,
        }
    }
}

impl DevIssuer {
    /// A new issuer named `issuer`, signing for `audience`.
    pub fn new(issuer: &str, audience: &str) -> Result<Self> {
        let failed = || Error::new(ErrorKind::Internal, "cannot generate an Ed25519 key");
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| failed())?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| failed())?;
        Ok(DevIssuer {
            pair,
            kid: uuid::Uuid::new_v4().to_string(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// The public JWK set (`gateway.jwt.keys_file`'s content).
    pub fn jwks(&self) -> String {
        let x = URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref());
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "alg": "EdDSA", "x": x}]})
            .to_string()
    }

    /// A signed token for `request`, with a fresh `jti`; returns the token and its `jti`.
    pub fn token(&self, request: &TokenRequest<'_>) -> (String, String) {
        let now = chrono::Utc::now().timestamp();
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = json!({
            "iss": self.issuer, "aud": self.audience, "sub": request.sub,
            "roles": request.roles, "jti": jti, "break_glass": request.break_glass,
            "iat": now.min(now + request.lifetime_secs - 1), "exp": now + request.lifetime_secs,
        });
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = URL_SAFE_NO_PAD.encode(self.pair.sign(signed.as_bytes()));
        (format!("{signed}.{signature}"), jti)
    }
}
