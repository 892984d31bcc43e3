//! Mints a session token, as the session issuer does: for local invocations and smoke tests.
//!
//! ```text
//! cargo run -q -p forward-api --bin session-token -- <session-id> [ttl-seconds]
//! ```
//! The signing secret is read from `SESSION_TOKEN_SECRET` (the same string as the Secrets
//! Manager secret the function reads). Prints the token.

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let session_id = args
        .next()
        .ok_or("usage: session-token <session-id> [ttl-seconds]")?;
    let ttl: i64 = args
        .next()
        .map(|s| s.parse().map_err(|e| format!("ttl-seconds '{s}': {e}")))
        .transpose()?
        .unwrap_or(3600);
    let secret = std::env::var("SESSION_TOKEN_SECRET")
        .map_err(|_| "SESSION_TOKEN_SECRET must hold the signing secret")?;
    forward_api::TokenVerifier::new(secret.as_bytes())?;
    let exp = forward_api::now_ms() / 1000 + ttl;
    println!(
        "{}",
        forward_api::auth::mint(secret.as_bytes(), &session_id, exp)?
    );
    Ok(())
}
