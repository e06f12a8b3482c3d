//! 1,000 concurrent callers of one token source.

use super::*;

pub(super) async fn token_source(mock: &ClerkMock) {
    let clock = ManualClock::new();
    let client = ClerkClient::new(mock.api_url()).expect("client");
    mock.set_latency(Duration::from_millis(20));
    let key = secrecy::SecretString::from(
        mock.machine_by_name("JobApplier.Bot")
            .expect("m")
            .secret_key,
    );
    let source = MintedTokenSource::new(
        client.clone(),
        key,
        MintSettings::default(),
        Arc::new(clock.clone()),
    );
    let before = mock.calls(Endpoint::CreateToken);
    let (cold50, cold99) = token_source_burst(&source).await;
    let cold_calls = mock.calls(Endpoint::CreateToken) - before;
    clock.advance(Duration::from_secs(3301));
    let before = mock.calls(Endpoint::CreateToken);
    let (exp50, exp99) = token_source_burst(&source).await;
    let exp_calls = mock.calls(Endpoint::CreateToken) - before;
    let (_, warm99) = token_source_burst(&source).await;
    mock.set_latency(Duration::ZERO);
    println!("## Token source: 1,000 concurrent callers (Clerk create +20 ms)\n");
    println!("| moment | create calls | p50 wait | p99 wait |\n|---|---|---|---|");
    println!(
        "| cold start | {cold_calls} | {} | {} |",
        ms(cold50),
        ms(cold99)
    );
    println!(
        "| at expiry − buffer | {exp_calls} | {} | {} |",
        ms(exp50),
        ms(exp99)
    );
    println!("| cached (no refresh due) | 0 | — | {} |\n", ms(warm99));
}
