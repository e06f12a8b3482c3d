//! `CLERK_MACHINE_SECRET_KEY=ak_… CLERK_MACHINE_ID=mch_… ALLOWED_MACHINE_IDS=mch_…,mch_… adopter`

use m2m_core::VerifierConfig;
use m2m_core::config::Env;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::process();
    let allowed = env.get("ALLOWED_MACHINE_IDS").unwrap_or_default();
    let allowed = allowed
        .split(',')
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    let app = adopter::app(adopter::verifier(VerifierConfig::from_env(&env)?)?, allowed);
    axum::serve(tokio::net::TcpListener::bind("0.0.0.0:3000").await?, app).await?;
    Ok(())
}
