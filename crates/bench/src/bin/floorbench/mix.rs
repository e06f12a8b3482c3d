//! The production-shaped mix: many users whose session JWTs are renewed every token life, used
//! unequally (Zipf), with bots mixed in, in **simulated** time that advances with the request
//! count, so every server meets the same share of first-seen tokens whatever its speed.
//!
//! A round is one stream of requests, the same for every server: request `i` happens at
//! simulated second `t0 + i / sim_rate`; it is a bot's with probability `bot_share` (the bots
//! in turn at random), else a user's, the user drawn from Zipf(users, s). A user's session token
//! is the one of its current generation, `⌊(t + offset) / token_life⌋` (offsets spread the
//! renewals over the minute, as real sessions start at any moment); a bot's token likewise, with
//! the period m2m-core's token source renews at (lifetime − refresh buffer). Each round starts
//! its simulated clock past the previous round's, so their token generations are disjoint and
//! no round is warmed by another. The first token life of each round is a lead-in, not
//! measured, so the measured part starts in the steady state (every active user already has a
//! token it used before, and renews it once per token life).
//!
//! Tokens are minted before each server's run (so their real `iat` is that moment and `exp` is
//! `iat` + token life, as Clerk's): the servers check `exp` against the real clock, and a run
//! lasts well under a token life of real time; the run is cut at `exp` if not.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bench::SessionMinter;
use clerk_mock::ClerkMock;
use m2m_core::settings::MintSettings;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// The mix's settings (floorbench's `--users`, `--token-life`, `--zipf`, `--bot-share`,
/// `--sim-rate`, `--bots`, `--mix-seconds`).
#[derive(Debug, Clone, Copy)]
pub struct MixSettings {
    pub users: u32,
    /// Seconds a session token lives, and the interval at which each user gets a new one.
    pub token_life: u32,
    pub zipf: f64,
    /// Share of requests from bots (0–1).
    pub bot_share: f64,
    /// Requests per simulated second, all users and bots together.
    pub sim_rate: u32,
    /// Bot instances, each with its own M2M token: half the job-applier, half the
    /// candidate-representer; of each, half opaque tokens and half JWTs.
    pub bots: u32,
    /// Simulated seconds measured per round, after the lead-in.
    pub seconds: u32,
}

impl MixSettings {
    fn lead_in(&self) -> usize {
        self.token_life as usize * self.sim_rate as usize
    }
    fn measured(&self) -> usize {
        self.seconds as usize * self.sim_rate as usize
    }

    /// One line stating the mix, to reproduce it.
    pub fn describe(&self, plans: &[Plan]) -> String {
        let first_seen = plans.iter().map(|p| p.first_seen).sum::<usize>() as f64
            / plans.iter().map(|p| p.measured.len()).sum::<usize>().max(1) as f64;
        let sessions: usize = plans.iter().map(|p| p.session_tokens).sum();
        let (opaque, jwt) = (bot_period(false), bot_period(true));
        format!(
            "{} users, requests per user Zipf(s = {}); each user's session JWT re-minted every {} s of simulated time (`exp` − `iat` = {} s, `nbf` = `iat` − 10); {:.0} % of requests from {} bots, half with opaque and half with JWT-format M2M tokens, renewed as m2m-core's token source does (opaque: every {} s, JWT: every {} s); {} requests per simulated second (`--users {} --zipf {} --token-life {} --bot-share {} --bots {} --sim-rate {} --mix-seconds {}`). Each round: a lead-in of one token life ({} requests, not measured), then {} measured requests ({} simulated s); rounds use disjoint token generations. First-seen tokens: **{:.1} %** of the measured requests ({} session tokens minted per round on average), the least any one cache could miss.",
            self.users,
            self.zipf,
            self.token_life,
            self.token_life,
            self.bot_share * 100.0,
            self.bots,
            opaque.as_secs(),
            jwt.as_secs(),
            self.sim_rate,
            self.users,
            self.zipf,
            self.token_life,
            self.bot_share,
            self.bots,
            self.sim_rate,
            self.seconds,
            self.lead_in(),
            self.measured(),
            self.seconds,
            first_seen * 100.0,
            sessions / plans.len().max(1),
        )
    }
}

/// How often a bot gets a new token: its lifetime less the refresh buffer of m2m-core's
/// defaults for the format.
fn bot_period(jwt: bool) -> Duration {
    let s = if jwt {
        MintSettings::jwt()
    } else {
        MintSettings::default()
    };
    s.lifetime.saturating_sub(s.refresh_buffer)
}

/// Which token a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    User { user: u32, generation: u64 },
    Bot { bot: u32, generation: u64 },
}

/// One round's stream of requests.
pub struct Plan {
    round: usize,
    /// Distinct tokens, in order of first use.
    holders: Vec<Holder>,
    lead_in: Arc<Vec<u32>>,
    measured: Arc<Vec<u32>>,
    /// Measured requests whose token was not used before in the round.
    first_seen: usize,
    session_tokens: usize,
}

impl Plan {
    /// Round `round`'s stream (the same for every server).
    pub fn new(settings: &MixSettings, round: usize) -> Self {
        let life = f64::from(settings.token_life.max(1));
        // Offsets are the users' and bots' own, the same in every round.
        let mut fixed = StdRng::seed_from_u64(0x6d69_7831);
        let user_offsets: Vec<f64> = (0..settings.users)
            .map(|_| fixed.random_range(0.0..life))
            .collect();
        let bot_periods: Vec<f64> = (0..settings.bots)
            .map(|b| bot_period(is_jwt_bot(b)).as_secs_f64().max(1.0))
            .collect();
        let bot_offsets: Vec<f64> = bot_periods
            .iter()
            .map(|p| fixed.random_range(0.0..*p))
            .collect();
        // Zipf(users, s) exactly: user k (from 1) weighs k^-s.
        let zipf = WeightedIndex::new(
            (1..=settings.users.max(1)).map(|k| f64::from(k).powf(-settings.zipf)),
        )
        .expect("Zipf: finite positive weights");
        let mut rng = StdRng::seed_from_u64(round as u64 + 1);
        let total = settings.lead_in() + settings.measured();
        let rate = f64::from(settings.sim_rate.max(1));
        // Past the previous rounds' spans and their bots' longest period: disjoint generations.
        let span = total as f64 / rate + bot_periods.iter().copied().fold(life, f64::max);
        let t0 = round as f64 * 2.0 * span;
        let mut index: HashMap<Holder, u32> = HashMap::new();
        let mut holders = Vec::new();
        let mut order = Vec::with_capacity(total);
        let mut first_seen = 0;
        for i in 0..total {
            let t = t0 + i as f64 / rate;
            let holder = if settings.bots > 0 && rng.random_bool(settings.bot_share.clamp(0.0, 1.0))
            {
                let bot = rng.random_range(0..settings.bots);
                let generation =
                    ((t + bot_offsets[bot as usize]) / bot_periods[bot as usize]) as u64;
                Holder::Bot { bot, generation }
            } else {
                let user = zipf.sample(&mut rng) as u32;
                let generation = ((t + user_offsets[user as usize]) / life) as u64;
                Holder::User { user, generation }
            };
            let next = holders.len() as u32;
            let k = *index.entry(holder).or_insert_with(|| {
                holders.push(holder);
                if i >= settings.lead_in() {
                    first_seen += 1;
                }
                next
            });
            order.push(k);
        }
        let measured = order.split_off(settings.lead_in().min(order.len()));
        let session_tokens = holders
            .iter()
            .filter(|h| matches!(h, Holder::User { .. }))
            .count();
        Self {
            round,
            holders,
            lead_in: Arc::new(order),
            measured: Arc::new(measured),
            first_seen,
            session_tokens,
        }
    }

    pub fn lead_in(&self) -> &Arc<Vec<u32>> {
        &self.lead_in
    }

    pub fn measured(&self) -> &Arc<Vec<u32>> {
        &self.measured
    }

    /// The round's tokens, minted now: session JWTs issued this second with `exp` one token
    /// life away, and the bots' M2M tokens created at the mock. `run` (a counter) makes every
    /// call's tokens distinct, also within a round. Returns them with the moment they expire.
    pub fn mint(
        &self,
        settings: &MixSettings,
        mock: &ClerkMock,
        minter: &SessionMinter,
        run: usize,
    ) -> (Arc<Vec<String>>, SystemTime) {
        let now = SystemTime::now();
        let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let life = i64::from(settings.token_life);
        let sessions: Vec<(usize, u32, u64)> = self
            .holders
            .iter()
            .enumerate()
            .filter_map(|(i, h)| match *h {
                Holder::User { user, generation } => Some((i, user, generation)),
                Holder::Bot { .. } => None,
            })
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let chunk = sessions.len().div_ceil(threads).max(1);
        let round = self.round;
        let minted: Vec<(usize, String)> = std::thread::scope(|s| {
            let handles: Vec<_> = sessions
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|&(i, user, generation)| {
                                // Clerk-shaped ids: a user keeps its session across renewals.
                                let token = minter.mint_session(
                                    &format!("user_bench{user:022}"),
                                    &format!("sess_bench{round:04}{user:018}"),
                                    iat,
                                    life,
                                    &format!("{run:06x}{generation:014x}"),
                                );
                                (i, token)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("minting thread"))
                .collect()
        });
        let mut tokens = vec![String::new(); self.holders.len()];
        for (i, t) in minted {
            tokens[i] = t;
        }
        let machines = [
            mock.machine_by_name("JobApplier.Bot").expect("machine").id,
            mock.machine_by_name("CandidateRepresenter.Bot")
                .expect("machine")
                .id,
        ];
        for (i, h) in self.holders.iter().enumerate() {
            if let Holder::Bot { bot, .. } = *h {
                let jwt = is_jwt_bot(bot);
                let s = if jwt {
                    MintSettings::jwt()
                } else {
                    MintSettings::default()
                };
                let body = json!({
                    "token_format": if jwt { "jwt" } else { "opaque" },
                    "seconds_until_expiration": s.lifetime.as_secs(),
                });
                tokens[i] = mock.mint(&machines[bot as usize % 2], &body)["token"]
                    .as_str()
                    .expect("token")
                    .to_owned();
            }
        }
        (Arc::new(tokens), now + Duration::from_secs(life as u64))
    }
}

/// Bots 0, 1 opaque, 2, 3 JWT, 4, 5 opaque…: each machine has both formats.
fn is_jwt_bot(bot: u32) -> bool {
    bot % 4 >= 2
}
